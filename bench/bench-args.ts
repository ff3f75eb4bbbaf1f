import { parseArgs } from 'node:util';
import { parseMemoryMiB } from '../src/util/index.js';
import type { ForkBenchOptions } from './fork-result.js';

export const USAGE = `usage: npm run bench -- fork [options]
  --children N     children forked one at a time for the latency figures (default 10, at least 1)
  --cold-runs N    cold boots for the baseline (default 3, at least 1)
  --memory SIZE    guest RAM of the baseline VMs and the template (default 512M)
  --parallel A,B   sizes of the parallel rounds (default 10,20; the last one gives the memory figures)
  --idle-wait S    seconds the last round idles before its memory is read (default 5)
  --tb-size MIB    TCG translation cache of the template, inherited by children (default: the engine's)
  --out DIR        where fork-<date>.json and .md are written (default bench/results)`;

export class UsageError extends Error {}

function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a whole number ≥ 1, got "${value}"`);
  return n;
}

/** Pure: argv after the benchmark name → options with every default applied. */
export function parseForkArgs(argv: readonly string[], defaultOutDir: string): ForkBenchOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        children: { type: 'string' },
        'cold-runs': { type: 'string' },
        memory: { type: 'string' },
        parallel: { type: 'string' },
        'idle-wait': { type: 'string' },
        'tb-size': { type: 'string' },
        out: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const memory = values.memory ?? '512M';
  try {
    parseMemoryMiB(memory);
  } catch (err) {
    throw new UsageError(`--memory: ${(err as Error).message}`);
  }
  const parallel = (values.parallel ?? '10,20').split(',').map((x) => positiveInt('parallel', x.trim(), 0));
  const idleWait = Number(values['idle-wait'] ?? '5');
  if (!(idleWait >= 0)) throw new UsageError(`--idle-wait must be a number of seconds ≥ 0, got "${values['idle-wait']}"`);
  return {
    children: positiveInt('children', values.children, 10),
    coldRuns: positiveInt('cold-runs', values['cold-runs'], 3),
    memory,
    parallel,
    idleWaitMs: Math.round(idleWait * 1000),
    ...(values['tb-size'] !== undefined ? { tbSizeMiB: positiveInt('tb-size', values['tb-size'], 0) } : {}),
    outDir: values.out ?? defaultOutDir,
  };
}
