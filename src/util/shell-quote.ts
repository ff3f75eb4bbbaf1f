import { VmforkError } from '../errors.js';

/**
 * Single-quotes a string for sh: inside '…' the only character that needs care is ' itself. Used for guest
 * scripts and for QEMU's `exec:` migration URIs, which QEMU runs through /bin/sh.
 */
export function shQuote(value: string): string {
  if (value.includes('\0')) throw new VmforkError('VMFORK_INVALID_ARGUMENT', 'a NUL byte cannot be passed through a shell');
  return `'${value.replaceAll("'", `'\\''`)}'`;
}
