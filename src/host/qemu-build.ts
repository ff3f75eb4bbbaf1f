import { VmforkError } from '../errors.js';
import { QEMU_SYSTEM_BINARY, runQemuTool } from './qemu-binary.js';

/** What a child's QEMU must share with the template's: the exact build and what `q35` resolves to. */
export interface QemuBuild {
  /** First line of `qemu-system-x86_64 --version`, with the distribution's package version. */
  build: string;
  /** The versioned machine type behind the `q35` alias, e.g. `pc-q35-7.2`. */
  machine: string;
}

let cached: Promise<QemuBuild> | undefined;

/** Probes the installed QEMU once per process (a fork of 20 children must not run it 20 times). */
export function localQemuBuild(binary: string = QEMU_SYSTEM_BINARY): Promise<QemuBuild> {
  cached ??= probe(binary).catch((err: unknown) => {
    cached = undefined;
    throw err;
  });
  return cached;
}

async function probe(binary: string): Promise<QemuBuild> {
  const version = await runQemuTool(binary, ['--version']);
  const machines = await runQemuTool(binary, ['-machine', 'help']);
  return { build: version.stdout.split('\n')[0]?.trim() ?? '', machine: parseQ35Alias(machines.stdout) };
}

/** Finds `q35 … (alias of pc-q35-X.Y)` in `-machine help` output. */
export function parseQ35Alias(text: string): string {
  const m = /^q35\s.*\(alias of ([\w.-]+)\)/m.exec(text);
  if (!m?.[1]) throw new VmforkError('VMFORK_QEMU_MISSING', 'this QEMU has no q35 machine type');
  return m[1];
}
