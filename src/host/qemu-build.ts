import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { delimiter, dirname, join } from 'node:path';
import { VmforkError } from '../errors.js';
import { QEMU_SYSTEM_BINARY, runQemuTool } from './qemu-binary.js';

/** What a child's QEMU must share with the template's: the exact build and what `q35` resolves to. */
export interface QemuBuild {
  /** First line of `qemu-system-x86_64 --version`, with the distribution's package version. */
  build: string;
  /** The versioned machine type behind the `q35` alias, e.g. `pc-q35-7.2`. */
  machine: string;
}

export interface QemuBuildOptions {
  binary?: string;
  /**
   * A file remembering the probe across processes, keyed by the binary's path, inode, size, mtime and ctime: the
   * probe runs QEMU twice (~50 ms, on every `vmfork fork`), and an upgraded binary is a new file, probed again.
   */
  cacheFile?: string;
}

let cached: Promise<QemuBuild> | undefined;

/** Probes the installed QEMU once per process (a fork of 20 children must not run it 20 times). */
export function localQemuBuild(options: QemuBuildOptions = {}): Promise<QemuBuild> {
  cached ??= readQemuBuild(options).catch((err: unknown) => {
    cached = undefined;
    throw err;
  });
  return cached;
}

/** The probe itself (no in-process memo): from `cacheFile` while the binary is the same file, else QEMU is run. */
export async function readQemuBuild(options: QemuBuildOptions = {}): Promise<QemuBuild> {
  const { binary = QEMU_SYSTEM_BINARY, cacheFile } = options;
  const key = cacheFile ? await binaryKey(binary) : undefined;
  if (cacheFile && key) {
    const hit = await readFile(cacheFile, 'utf8').then((t) => JSON.parse(t) as { key?: string; build?: QemuBuild }, () => undefined);
    if (hit?.key === key && hit.build?.build && hit.build.machine) return hit.build;
  }
  const build = await probe(binary);
  if (cacheFile && key) {
    // temp file + rename: a concurrent reader sees the old cache or the new one, never half of one
    await mkdir(dirname(cacheFile), { recursive: true });
    const tmp = `${cacheFile}.${process.pid}`;
    await writeFile(tmp, JSON.stringify({ key, build }));
    await rename(tmp, cacheFile);
  }
  return build;
}

/** `path:ino:size:mtime:ctime` of the binary QEMU would run as (first match on PATH); undefined if not found. */
async function binaryKey(binary: string): Promise<string | undefined> {
  const dirs = binary.includes('/') ? [''] : (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const dir of dirs) {
    const path = dir ? join(dir, binary) : binary;
    const s = await stat(path).catch(() => undefined);
    if (s?.isFile()) return `${path}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
  }
  return undefined;
}

async function probe(binary: string): Promise<QemuBuild> {
  const [version, machines] = await Promise.all([runQemuTool(binary, ['--version']), runQemuTool(binary, ['-machine', 'help'])]);
  return { build: version.stdout.split('\n')[0]?.trim() ?? '', machine: parseQ35Alias(machines.stdout) };
}

/** Finds `q35 … (alias of pc-q35-X.Y)` in `-machine help` output. */
export function parseQ35Alias(text: string): string {
  const m = /^q35\s.*\(alias of ([\w.-]+)\)/m.exec(text);
  if (!m?.[1]) throw new VmforkError('VMFORK_QEMU_MISSING', 'this QEMU has no q35 machine type');
  return m[1];
}
