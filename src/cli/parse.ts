import { VmforkError } from '../errors.js';

/** Parses a flag that must be a whole number ≥ 1 (counts, CPUs, seconds); anything else is VMFORK_INVALID_ARGUMENT. */
export function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `${flag} must be a positive whole number, got "${value}"`, { details: { flag, value } });
  }
  return n;
}
