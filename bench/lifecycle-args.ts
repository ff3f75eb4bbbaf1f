import { parseArgs } from 'node:util';
import { memoryOption, positiveInt, UsageError } from './bench-args.js';
import type { LifecycleBenchOptions } from './lifecycle-bench.js';

export const LIFECYCLE_USAGE = `usage: npm run bench -- lifecycle [options]
  --rounds N        claim/release rounds, and claims that fork (default 10)
  --push-count N    children of the pool an image is pushed to (default 10)
  --memory SIZE     guest RAM of every child (default 384M)
  --out DIR         where lifecycle-<date>.json and .md are written (default bench/results)`;

/** Pure: argv after `lifecycle` → options with every default applied; a bad flag throws a UsageError. */
export function parseLifecycleArgs(argv: readonly string[], defaultOutDir: string): LifecycleBenchOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { rounds: { type: 'string' }, 'push-count': { type: 'string' }, memory: { type: 'string' }, out: { type: 'string' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return {
    rounds: positiveInt('rounds', values.rounds, 10),
    pushCount: positiveInt('push-count', values['push-count'], 10),
    memory: memoryOption(values.memory, '384M'),
    outDir: values.out ?? defaultOutDir,
  };
}
