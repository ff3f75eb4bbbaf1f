import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, rm, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VmforkError } from '../errors.js';
import { run, which } from '../util/index.js';
import type { BuildStep } from './build-context.js';
import { digestFile } from './manifest.js';
import type { GuestAgentRecipe } from './recipe.js';
import { copyTree, listTree, treeDigest, type TreeLimits } from './source-tree.js';

/** Where the agent lives in the guest. */
export const GUEST_AGENT_BINARY = '/usr/local/sbin/vmfork-guest';
export const GUEST_AGENT_UNIT = 'vmfork-guest.service';
export const GUEST_AGENT_UDEV_RULE = '60-vmfork-guest.rules';
/** systemd's name for the port's device (systemd-escape --path /dev/virtio-ports/org.vmfork.guest.0). */
export const GUEST_AGENT_DEVICE_UNIT = 'dev-virtio\\x2dports-org.vmfork.guest.0.device';


/**
 * Guest packages the agent needs: libcrypto (openssh-server pulls it in too; named because the agent links it), and
 * pam_systemd, without which an ssh or console login is never registered with logind, so WATCH would see none.
 */
export const GUEST_AGENT_PACKAGES = ['libssl3', 'libpam-systemd'] as const;

const LIMITS: TreeLimits = {
  maxFiles: 64,
  maxBytes: 1024 * 1024,
  // build outputs and prose: a doc edit must not rebuild every image
  exclude: ['build/', 'PROTOCOL.md', 'README.md'],
  what: 'guest agent sources',
};

/** Host programs and headers compiling the agent needs, with their Debian packages. */
const COMPILE_NEEDS: readonly { what: string; present: () => Promise<boolean>; pkg: string }[] = [
  { what: 'gcc', present: async () => (await which('gcc')) !== undefined, pkg: 'gcc' },
  { what: 'make', present: async () => (await which('make')) !== undefined, pkg: 'make' },
  { what: 'glibc headers', present: async () => existsSync('/usr/include/stdio.h'), pkg: 'libc6-dev' },
  { what: 'OpenSSL headers', present: async () => existsSync('/usr/include/openssl/evp.h'), pkg: 'libssl-dev' },
];

/**
 * The repository's guest/ directory: found by walking up from this module (dist/src/image/ when compiled,
 * src/image/ under tsx) to the folder that holds guest/Makefile.
 */
export function defaultGuestAgentDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'guest', 'Makefile'))) return join(dir, 'guest');
    dir = dirname(dir);
  }
  throw new VmforkError('VMFORK_INTERNAL', `cannot find the vmfork-guest sources (guest/Makefile) above ${fileURLToPath(import.meta.url)}`);
}

/** `vmfork-guest 0.1.0 protocol 1` → its parts; undefined for anything else. */
export function parseAgentVersion(text: string): { version: string; protocolVersion: number } | undefined {
  const m = /^vmfork-guest (\S+) protocol (\d+)$/m.exec(text.trim());
  return m?.[1] && m[2] ? { version: m[1], protocolVersion: Number(m[2]) } : undefined;
}

export async function guestAgentRecipe(dir: string = defaultGuestAgentDir()): Promise<GuestAgentRecipe> {
  const files = await listTree(dir, LIMITS);
  const header = await readFile(join(dir, 'src', 'proto.h'), 'utf8').catch(() => '');
  const version = /#define VFG_AGENT_VERSION "([^"]+)"/.exec(header)?.[1];
  const protocol = /#define VFG_PROTOCOL_VERSION (\d+)/.exec(header)?.[1];
  if (!version || !protocol) throw new VmforkError('VMFORK_INTERNAL', `${dir}/src/proto.h does not define VFG_AGENT_VERSION and VFG_PROTOCOL_VERSION`);
  return { sourceDigest: await treeDigest(dir, files), version, protocolVersion: Number(protocol) };
}

/** The host can compile the agent; checked before a build starts (VMFORK_DEPENDENCY_MISSING names the packages). */
export async function checkCompiler(): Promise<void> {
  const missing: string[] = [];
  for (const need of COMPILE_NEEDS) if (!(await need.present())) missing.push(need.pkg);
  if (missing.length > 0) {
    throw new VmforkError('VMFORK_DEPENDENCY_MISSING', `compiling vmfork-guest needs ${missing.join(', ')}; apt-get install ${missing.join(' ')}`, {
      details: { packages: missing },
    });
  }
}

/**
 * Compiles the agent from a snapshot of its sources in `workDir` (checked against `sourceDigest`, so the binary
 * is exactly what the recipe names). Returns the binary's path. Used by the image build and the protocol tests.
 */
export async function compileGuestAgent(sourceDir: string, workDir: string, sourceDigest?: string): Promise<string> {
  await checkCompiler();
  const files = await listTree(sourceDir, LIMITS);
  const digest = sourceDigest ?? (await treeDigest(sourceDir, files));
  const copy = join(workDir, 'src');
  await rm(copy, { recursive: true, force: true });
  await copyTree(sourceDir, files, copy, digest, (f) => f.executable);
  const r = await run('make', ['-C', copy, `OUT=${join(workDir, 'build')}`], { allowFailure: true, timeoutMs: 5 * 60_000 });
  if (r.code !== 0) {
    throw new VmforkError('VMFORK_IMAGE_BUILD_FAILED', `compiling vmfork-guest failed (make exited ${r.code})`, {
      details: { stderrTail: (r.stderr || r.stdout).trim().split('\n').slice(-20).join('\n') },
    });
  }
  return join(workDir, 'build', 'vmfork-guest');
}

/**
 * Compiles the agent on the build host (Debian 12 host = Debian 12 guest: same glibc, same libcrypto ABI) and
 * installs it with its unit and udev rule, the unit enabled for the port's device. Then runs the installed binary
 * inside the rootfs: that proves it finds its libraries there, and its answer goes into the manifest.
 */
export const guestAgentStep: BuildStep = {
  name: 'guest-agent',
  async run(ctx) {
    const want = ctx.recipe.guestAgent;
    if (!want) return;
    const sourceDir = ctx.sources.guestAgentDir ?? defaultGuestAgentDir();
    const binary = await compileGuestAgent(sourceDir, join(ctx.buildDir, 'guest-agent'), want.sourceDigest);
    const installed = join(ctx.rootfs, GUEST_AGENT_BINARY);
    await mkdir(dirname(installed), { recursive: true });
    await copyFile(binary, installed);
    await chmod(installed, 0o755);
    const unitDir = join(ctx.rootfs, 'etc', 'systemd', 'system');
    await copyFile(join(sourceDir, GUEST_AGENT_UNIT), join(unitDir, GUEST_AGENT_UNIT));
    await chmod(join(unitDir, GUEST_AGENT_UNIT), 0o644);
    const wants = join(unitDir, `${GUEST_AGENT_DEVICE_UNIT}.wants`);
    await mkdir(wants, { recursive: true });
    await rm(join(wants, GUEST_AGENT_UNIT), { force: true });
    await symlink(`/etc/systemd/system/${GUEST_AGENT_UNIT}`, join(wants, GUEST_AGENT_UNIT));
    const rules = join(ctx.rootfs, 'etc', 'udev', 'rules.d');
    await mkdir(rules, { recursive: true });
    await copyFile(join(sourceDir, GUEST_AGENT_UDEV_RULE), join(rules, GUEST_AGENT_UDEV_RULE));
    await chmod(join(rules, GUEST_AGENT_UDEV_RULE), 0o644);

    const r = await run('chroot', [ctx.rootfs, GUEST_AGENT_BINARY, '--version'], { allowFailure: true, timeoutMs: 60_000 });
    const said = parseAgentVersion(r.stdout);
    if (r.code !== 0 || !said) {
      throw new VmforkError('VMFORK_IMAGE_BUILD_FAILED', `the installed vmfork-guest does not run in the guest rootfs (exit ${r.code})`, {
        details: { stderrTail: (r.stderr || r.stdout).trim() },
      });
    }
    if (said.version !== want.version || said.protocolVersion !== want.protocolVersion) {
      throw new VmforkError('VMFORK_IMAGE_BUILD_FAILED', `the built vmfork-guest says ${said.version}/${said.protocolVersion}, its sources ${want.version}/${want.protocolVersion}`);
    }
    const { sha256, size } = await digestFile(installed);
    ctx.facts.guestAgent = { ...said, sha256, bytes: size };
  },
};
