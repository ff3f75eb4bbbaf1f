import { copyFile, readFile, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { VmforkError } from '../errors.js';
import { convert } from '../qemu/index.js';
import { run, type RunResult } from '../util/index.js';
import { removeDirSafely } from './build-dir.js';
import { applyGuestConfig, applyHygiene } from './guest-config.js';
import type { BuildContext, BuildStep } from './build-context.js';
import { guestAgentStep } from './guest-agent.js';
import { hooksStep } from './hooks.js';
import type { BuildInfo } from './manifest.js';
import { pruneModules } from './module-prune.js';

/** Names of the files a build publishes next to manifest.json. */
export const DISK_FILE = 'disk.qcow2';
export const KERNEL_FILE = 'vmlinuz';
export const INITRD_FILE = 'initrd.img';

export type { BuildContext, BuildFacts, BuildStep } from './build-context.js';

/** Kernel options recorded in the manifest; CONFIG_VMGENID=y is required (RNG reseed on fork). */
export const KERNEL_CONFIG_KEYS = [
  'CONFIG_VMGENID',
  'CONFIG_VIRT_DRIVERS',
  'CONFIG_VIRTIO_PCI',
  'CONFIG_VIRTIO_BLK',
  'CONFIG_VIRTIO_NET',
  'CONFIG_VIRTIO_CONSOLE',
  'CONFIG_HW_RANDOM_VIRTIO',
  'CONFIG_EXT4_FS',
] as const;

const GUEST_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive', HOME: '/root' };

/** Runs a program inside the rootfs; a failure carries 20 lines of its stderr (run() keeps only 5). */
async function inRoot(ctx: BuildContext, args: string[]): Promise<RunResult> {
  return mustRun('chroot', [ctx.rootfs, ...args]);
}

/** Runs a program; a failure carries the last 20 lines of `logFile` when given and readable, else of stderr. */
async function mustRun(cmd: string, args: string[], options: { timeoutMs?: number; logFile?: string } = {}): Promise<RunResult> {
  const r = await run(cmd, args, { env: GUEST_ENV, timeoutMs: options.timeoutMs ?? 10 * 60_000, allowFailure: true });
  if (r.code !== 0) {
    const log = options.logFile ? await readFile(options.logFile, 'utf8').catch(() => '') : '';
    throw new VmforkError('VMFORK_IMAGE_BUILD_FAILED', `${cmd} ${args.join(' ')} exited ${r.code}`, {
      details: { stderrTail: (log || r.stderr || r.stdout).trim().split('\n').slice(-20).join('\n') },
    });
  }
  return r;
}

/** Parses a kernel .config into the values of `keys` ('y', 'm' or 'n' for "is not set"). */
export function parseKernelConfig(text: string, keys: readonly string[] = KERNEL_CONFIG_KEYS): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of keys) {
    const set = new RegExp(`^${key}=(.*)$`, 'm').exec(text);
    out[key] = set?.[1] ?? 'n';
  }
  return out;
}

/** Parses `dpkg-query -W -f '${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n'`; installed only. */
export function parseDpkgQuery(text: string): BuildInfo['packages'] {
  return text
    .split('\n')
    .map((l) => l.split('\t'))
    .filter((f) => f[0]?.startsWith('ii') && f[1] && f[2])
    .map(([, name = '', version = '', arch = '']) => ({ name, version, arch }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

async function kernelVersion(rootfs: string): Promise<string> {
  const versions = await readdir(join(rootfs, 'lib', 'modules'));
  if (versions.length !== 1 || !versions[0]) {
    throw new VmforkError('VMFORK_IMAGE_BUILD_FAILED', `expected one kernel in the rootfs, found: ${versions.join(', ') || 'none'}`);
  }
  return versions[0];
}

const debootstrap: BuildStep = {
  name: 'debootstrap',
  async run(ctx) {
    const { recipe } = ctx;
    const args = [`--variant=${recipe.variant}`, `--include=${recipe.packages.join(',')}`, '--components=main', recipe.suite, ctx.rootfs, ctx.mirror];
    // debootstrap's own stderr is terse; the reason is in its log inside the target
    await mustRun('debootstrap', args, { timeoutMs: 30 * 60_000, logFile: join(ctx.rootfs, 'debootstrap', 'debootstrap.log') });
  },
};

const configure: BuildStep = { name: 'configure', run: (ctx) => applyGuestConfig(ctx.rootfs) };

const kernel: BuildStep = {
  name: 'kernel',
  async run(ctx) {
    const version = await kernelVersion(ctx.rootfs);
    const config = parseKernelConfig(await readFile(join(ctx.rootfs, 'boot', `config-${version}`), 'utf8'));
    if (config.CONFIG_VMGENID !== 'y') {
      throw new VmforkError('VMFORK_IMAGE_BUILD_FAILED', `kernel ${version} has CONFIG_VMGENID=${config.CONFIG_VMGENID}: forked children could not reseed their RNG`);
    }
    ctx.facts.kernel = { version, config };
  },
};

const pruneStep: BuildStep = {
  name: 'prune-modules',
  async run(ctx) {
    const version = ctx.facts.kernel?.version ?? (await kernelVersion(ctx.rootfs));
    const { plan, ...stats } = await pruneModules(ctx.rootfs, version, ctx.recipe.pruneRules);
    if (plan.missingRequired.length > 0) {
      throw new VmforkError('VMFORK_IMAGE_BUILD_FAILED', `initramfs modules not found in kernel ${version}: ${plan.missingRequired.join(', ')}`);
    }
    await inRoot(ctx, ['depmod', '-a', version]);
    ctx.facts.modules = stats;
  },
};

const initramfs: BuildStep = {
  name: 'initramfs',
  async run(ctx) {
    const version = ctx.facts.kernel?.version ?? (await kernelVersion(ctx.rootfs));
    await inRoot(ctx, ['update-initramfs', '-u', '-k', version]);
    await copyFile(join(ctx.rootfs, 'boot', `vmlinuz-${version}`), join(ctx.outDir, KERNEL_FILE));
    await copyFile(join(ctx.rootfs, 'boot', `initrd.img-${version}`), join(ctx.outDir, INITRD_FILE));
  },
};

const packages: BuildStep = {
  name: 'packages',
  async run(ctx) {
    const r = await inRoot(ctx, ['dpkg-query', '-W', '-f', '${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n']);
    const list = parseDpkgQuery(r.stdout);
    const missing = ctx.recipe.packages.filter((p) => !list.some((i) => i.name === p));
    if (missing.length > 0) throw new VmforkError('VMFORK_IMAGE_BUILD_FAILED', `packages not installed: ${missing.join(', ')}`);
    ctx.facts.packages = list;
  },
};

const hygiene: BuildStep = {
  name: 'hygiene',
  async run(ctx) {
    await applyHygiene(ctx.rootfs);
    // record what the image really contains, not what we meant to do
    const facts = {
      machineIdBytes: (await stat(join(ctx.rootfs, 'etc', 'machine-id'))).size,
      sshHostKeys: (await readdir(join(ctx.rootfs, 'etc', 'ssh'))).filter((f) => f.startsWith('ssh_host_')),
      randomSeed: await stat(join(ctx.rootfs, 'var', 'lib', 'systemd', 'random-seed')).then(() => true, () => false),
    };
    if (facts.machineIdBytes !== 0 || facts.sshHostKeys.length > 0 || facts.randomSeed) {
      throw new VmforkError('VMFORK_IMAGE_BUILD_FAILED', `template hygiene incomplete: ${JSON.stringify(facts)}`);
    }
    ctx.facts.hygiene = facts;
  },
};

const filesystem: BuildStep = {
  name: 'mkfs',
  async run(ctx) {
    const du = await mustRun('du', ['-sxb', ctx.rootfs]);
    ctx.facts.rootfsBytes = Number(du.stdout.split('\t')[0]);
    // -d fills the filesystem from the directory: no loop device, no mount
    await mustRun('mkfs.ext4', ['-q', '-L', 'root', '-d', ctx.rootfs, join(ctx.buildDir, 'root.raw'), ctx.recipe.diskSize]);
    await removeDirSafely(ctx.rootfs); // free the space before the conversion
  },
};

const qcow2: BuildStep = {
  name: 'qcow2',
  async run(ctx) {
    const raw = join(ctx.buildDir, 'root.raw');
    await convert(raw, join(ctx.outDir, DISK_FILE), { outFormat: 'qcow2', srcFormat: 'raw', compress: ctx.recipe.compressDisk });
    await rm(raw, { force: true });
  },
};

/**
 * The build, in order. The agent and the hooks go in after the guest configuration (the agent's unit lands next
 * to the configured ones); hygiene comes after every step that could recreate identity files (initramfs, dpkg).
 * guest-agent and hooks do nothing for a recipe without them, so such a recipe builds as before.
 */
export const IMAGE_BUILD_STEPS: readonly BuildStep[] = [debootstrap, configure, guestAgentStep, hooksStep, kernel, pruneStep, initramfs, packages, hygiene, filesystem, qcow2];
