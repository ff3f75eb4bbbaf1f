import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { memoryOption, positiveInt, UsageError } from './bench-args.js';
import type { ProvisionBenchOptions } from './provision-result.js';

export const PROVISION_USAGE = `usage: npm run bench -- provision [options]
  --count N         desktops in the pool and in the traditional fleet (default 10)
  --concurrency N   traditional desktops customized at once (default: the number of CPUs)
  --memory SIZE     guest RAM of every desktop (default 384M)
  --out DIR         where provision-<date>.json and .md are written (default bench/results)`;

/** Pure: argv after `provision` → options with every default applied; a bad flag throws a UsageError. */
export function parseProvisionArgs(argv: readonly string[], defaultOutDir: string): ProvisionBenchOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { count: { type: 'string' }, concurrency: { type: 'string' }, memory: { type: 'string' }, out: { type: 'string' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return {
    count: positiveInt('count', values.count, 10),
    concurrency: positiveInt('concurrency', values.concurrency, availableParallelism()),
    memory: memoryOption(values.memory, '384M'),
    outDir: values.out ?? defaultOutDir,
  };
}
