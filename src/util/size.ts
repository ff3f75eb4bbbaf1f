import { VmforkError } from '../errors.js';

const UNITS: Record<string, number> = {
  '': 1024 * 1024, // a bare number is MiB, as for QEMU's -m
  B: 1,
  K: 1024,
  KB: 1024,
  KIB: 1024,
  M: 1024 ** 2,
  MB: 1024 ** 2,
  MIB: 1024 ** 2,
  G: 1024 ** 3,
  GB: 1024 ** 3,
  GIB: 1024 ** 3,
  T: 1024 ** 4,
  TB: 1024 ** 4,
  TIB: 1024 ** 4,
};

/** Parses "512M", "1G", "1.5GiB", "768" (MiB) into bytes. Units are binary. Throws VMFORK_INVALID_SIZE. */
export function parseSize(input: string, what = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(input);
  const unit = m?.[2]?.toUpperCase() ?? '';
  const factor = UNITS[unit];
  if (!m || factor === undefined) {
    throw new VmforkError('VMFORK_INVALID_SIZE', `${what} "${input}" is not a size like 512M or 2G`, {
      details: { input },
    });
  }
  const bytes = Math.round(Number(m[1]) * factor);
  if (!Number.isFinite(bytes) || bytes <= 0) {
    throw new VmforkError('VMFORK_INVALID_SIZE', `${what} "${input}" must be greater than zero`, { details: { input } });
  }
  return bytes;
}

/** Parses a memory size and requires whole MiB (QEMU's -m granularity) of at least `minMiB`. */
export function parseMemoryMiB(input: string, minMiB = 64): number {
  const bytes = parseSize(input, 'memory');
  if (bytes % (1024 * 1024) !== 0) {
    throw new VmforkError('VMFORK_INVALID_SIZE', `memory "${input}" must be a whole number of MiB`, { details: { input } });
  }
  const mib = bytes / (1024 * 1024);
  if (mib < minMiB) {
    throw new VmforkError('VMFORK_INVALID_SIZE', `memory "${input}" is below the minimum of ${minMiB}M`, { details: { input } });
  }
  return mib;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}
