import { VmforkError } from '../errors.js';

/** Parses a flag that must be a whole number ≥ 1 (counts, CPUs, seconds); anything else is VMFORK_INVALID_ARGUMENT. */
export function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `${flag} must be a positive whole number, got "${value}"`, { details: { flag, value } });
  }
  return n;
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** Parses a duration flag: `90`, `90s`, `30m`, `1h`, `2d` → seconds (≥ 1); anything else is VMFORK_INVALID_ARGUMENT. */
export function durationSeconds(value: string, flag: string): number {
  const m = /^\s*(\d+)\s*([smhd]?)\s*$/.exec(value);
  const n = m ? Number(m[1]) * (UNIT_SECONDS[m[2] || 's'] ?? 1) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `${flag} must be a duration like 90s, 30m, 1h or 2d, got "${value}"`, { details: { flag, value } });
  }
  return n;
}

/** Parses a flag that must be a whole number ≥ 0; anything else is VMFORK_INVALID_ARGUMENT. */
export function nonNegativeInt(value: string, flag: string): number {
  return value.trim() === '0' ? 0 : positiveInt(value, flag);
}
