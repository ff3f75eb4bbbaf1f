import { z } from 'zod';

/** QEMU's own memory per running VM, as the capacity checks count it. */
export const OVERHEAD_MIB = 64;

/**
 * The static bounds of a pool spec: each is in the schema (so OpenAPI shows it as minimum/maximum/maxLength) and
 * each error names its bound (`size.max: at most 10000`). Bounds that depend on the host (memory ≤ its RAM, cpus ≤
 * its CPUs, disks ≤ the datastore) are a second pass, `hostBoundProblems`, run before anything is created.
 */

/** A pool's children: more than one fork batch (256) is forked in batches. */
export const MAX_POOL_SIZE = 10_000;
/** A hook's timeout; a common hook runs once on the internal clone, a per-child one on every child. */
export const MAX_HOOK_TIMEOUT_SECONDS = 3600;
/** One hook argument value reaches the guest as an environment variable: bounded like a page, no NUL. */
export const MAX_ARG_VALUE_BYTES = 4096;
export const MAX_HOOK_ARGS = 64;
/** q35 with QEMU's default limits; the host pass narrows it to this host's CPUs. */
export const MAX_CPUS = 255;
/** Guest RAM: the host pass narrows it to this host's RAM. */
export const MAX_MEMORY_BYTES = 1024 ** 4;
/** One disk (qcow2 allows far more; the host pass narrows it to the datastore's size). */
export const MAX_DISK_BYTES = 64 * 1024 ** 4;
/** A size string (`256M`): longer ones are no size anyone means. */
export const MAX_SIZE_TEXT = 32;
/** One OpenSSH public key line (an RSA 16384-bit key is about 2.8 KiB). */
export const MAX_SSH_KEY_CHARS = 16 * 1024;

/** A bound in the unit a spec writes it: the largest binary unit that divides it (16M, 1T). */
export function sizeText(bytes: number): string {
  for (const [unit, factor] of [['T', 1024 ** 4], ['G', 1024 ** 3], ['M', 1024 ** 2], ['K', 1024]] as const) {
    if (bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return `${bytes}B`;
}

/** The message of a wrong type; a missing field says "required" instead. */
export function typeError(message: string): (issue: { input?: unknown }) => string {
  return (issue) => (issue.input === undefined ? 'required' : message);
}

/** A whole number from `min` to `max`; each way of being wrong has its own message naming the bound. */
export function wholeNumber(min: number, max: number, unit = ''): z.ZodNumber {
  const what = unit ? `a whole number of ${unit}` : 'a whole number';
  return z
    .number({ error: typeError(`must be ${what}`) })
    .int({ error: `must be ${what}` })
    .min(min, { error: `at least ${min}` })
    .max(max, { error: `at most ${max}` });
}

/** A hook argument value: a string of at most 4 KiB (UTF-8) without NUL, a finite number or a boolean. */
export const argValueSchema = z.union(
  [
    z
      .string()
      .max(MAX_ARG_VALUE_BYTES, { error: `at most ${MAX_ARG_VALUE_BYTES} bytes` })
      .refine((v) => Buffer.byteLength(v, 'utf8') <= MAX_ARG_VALUE_BYTES, { error: `at most ${MAX_ARG_VALUE_BYTES} bytes` })
      .refine((v) => !v.includes('\0'), { error: 'must not contain NUL' }),
    z.number().min(-Number.MAX_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER),
    z.boolean(),
  ],
  { error: 'must be a string, number or boolean' },
);
