import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { VmforkError } from '../src/errors.js';
import { parseMemoryMiB } from '../src/util/index.js';
import type { ProvisionBenchOptions } from './provision-result.js';

export const PROVISION_USAGE = `usage: npm run bench -- provision [options]
  --count N         desktops in the pool and in the traditional fleet (default 10)
  --concurrency N   traditional desktops customized at once (default: the number of CPUs)
  --memory SIZE     guest RAM of every desktop (default 384M)
  --out DIR         where provision-<date>.json and .md are written (default bench/results)`;

/** Pure: argv after `provision` → options with every default applied; a bad flag throws with the usage. */
export function parseProvisionArgs(argv: readonly string[], defaultOutDir: string): ProvisionBenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: { count: { type: 'string' }, concurrency: { type: 'string' }, memory: { type: 'string' }, out: { type: 'string' } },
    strict: true,
    allowPositionals: false,
  });
  const int = (name: string, v: string | undefined, fallback: number): number => {
    const n = v === undefined ? fallback : Number(v);
    if (!Number.isInteger(n) || n < 1) throw new VmforkError('VMFORK_INVALID_ARGUMENT', `--${name} must be a whole number ≥ 1, got "${v}"`);
    return n;
  };
  const memory = values.memory ?? '384M';
  parseMemoryMiB(memory);
  return { count: int('count', values.count, 10), concurrency: int('concurrency', values.concurrency, availableParallelism()), memory, outDir: values.out ?? defaultOutDir };
}
