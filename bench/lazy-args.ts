import { memoryOption, positiveInt, stringOptions } from './bench-args.js';

export interface LazyBenchOptions {
  /** Rounds; each measures a new host's first child once with a copy first and once lazily. */
  rounds: number;
  memory: string;
  outDir: string;
}

export const LAZY_USAGE = `usage: npm run bench -- lazy [options]
  --rounds N     rounds, each a copy-first run and a lazy run on a host without the replica (default 3)
  --memory SIZE  guest RAM of every child (default 384M)
  --out DIR      where lazy-<date>.json and .md are written (default bench/results)`;

/** Pure: argv after `lazy` → options with every default applied; a bad flag throws a UsageError. */
export function parseLazyArgs(argv: readonly string[], defaultOutDir: string): LazyBenchOptions {
  const values = stringOptions(argv, ['rounds', 'memory', 'out']);
  return {
    rounds: positiveInt('rounds', values.rounds, 3),
    memory: memoryOption(values.memory, '384M'),
    outDir: values.out ?? defaultOutDir,
  };
}
