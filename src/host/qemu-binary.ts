import { isVmforkError, VmforkError } from '../errors.js';
import { run, type RunOptions, type RunResult } from '../util/index.js';

/** The one system emulator vmfork drives. */
export const QEMU_SYSTEM_BINARY = 'qemu-system-x86_64';
export const QEMU_IMG_BINARY = 'qemu-img';

/** The Debian package that provides each QEMU program, for "what to do" messages. */
export const QEMU_PACKAGES: Record<string, string> = {
  [QEMU_SYSTEM_BINARY]: 'qemu-system-x86',
  [QEMU_IMG_BINARY]: 'qemu-utils',
};

/**
 * Runs a QEMU program; a missing binary is VMFORK_QEMU_MISSING (naming the package to install) rather than the
 * generic VMFORK_DEPENDENCY_MISSING, so every caller reports it the same way.
 */
export async function runQemuTool(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  try {
    return await run(cmd, args, options);
  } catch (err) {
    if (isVmforkError(err) && err.code === 'VMFORK_DEPENDENCY_MISSING') {
      const pkg = QEMU_PACKAGES[cmd] ?? 'qemu-system-x86 qemu-utils';
      throw new VmforkError('VMFORK_QEMU_MISSING', `${cmd} not found on PATH (apt-get install ${pkg})`, {
        cause: err,
        details: { program: cmd, package: pkg },
      });
    }
    throw err;
  }
}

export interface QemuVersion {
  /** Dotted release, e.g. `7.2.22`. */
  version: string;
  /** The whole first line, including the distribution build (`(Debian 1:7.2+dfsg-7+deb12u18+b3)`): a template
   *  records it because its saved device state only loads into the same QEMU build. */
  build: string;
}

/** Parses the first line of `qemu-system-x86_64 --version` or `qemu-img --version`. */
export function parseQemuVersion(text: string): QemuVersion | undefined {
  const line = text.split('\n')[0]?.trim() ?? '';
  const m = /version (\d+\.\d+(?:\.\d+)?)/.exec(line);
  return m?.[1] ? { version: m[1], build: line } : undefined;
}

/** Version of a QEMU program (`qemu-system-x86_64` unless told). Throws VMFORK_QEMU_MISSING when not installed. */
export async function qemuProgramVersion(binary: string = QEMU_SYSTEM_BINARY): Promise<QemuVersion> {
  const r = await runQemuTool(binary, ['--version'], { timeoutMs: 10_000 });
  const v = parseQemuVersion(r.stdout);
  if (!v) throw new VmforkError('VMFORK_INTERNAL', `cannot parse "${binary} --version" output: ${r.stdout.slice(0, 200)}`);
  return v;
}
