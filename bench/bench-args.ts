import { parseArgs } from 'node:util';
import { parseMemoryMiB } from '../src/util/index.js';
import type { ForkBenchOptions } from './fork-result.js';

export const USAGE = `usage: npm run bench -- fork [options]
  --children N     children forked one at a time per path, from cold processes and again from warm ones (default 10)
  --cold-runs N    cold boots for the baseline (default 3, at least 1)
  --memory SIZE    guest RAM of the baseline VMs and the templates (default 512M)
  --parallel N     children forked together per path (default 10)
  --idle N         idle children per path whose memory is read (default 20)
  --idle-wait S    seconds they idle before their memory is read (default 10)
  --cli-runs N     \`vmfork fork --count 1\` calls, with and without a warm process each (default 3)
  --ksm            also read the idle agent-path children after KSM merged pages (turned on host-wide, then restored)
  --tb-size MIB    TCG translation cache of the templates, inherited by children (default: the engine's)
  --out DIR        where fork-<date>.json and .md are written (default bench/results)`;

export class UsageError extends Error {}

/** `--name N`: a whole number ≥ 1, or the fallback when absent. */
export function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a whole number ≥ 1, got "${value}"`);
  return n;
}

/** `--memory SIZE`, checked like a VM's memory, or the fallback. */
export function memoryOption(value: string | undefined, fallback: string): string {
  const memory = value ?? fallback;
  try {
    parseMemoryMiB(memory);
  } catch (err) {
    throw new UsageError(`--memory: ${(err as Error).message}`);
  }
  return memory;
}

/** Pure: string options `names` read strictly from argv (no positionals); an unknown flag throws a UsageError. */
export function stringOptions<K extends string>(argv: readonly string[], names: readonly K[]): Partial<Record<K, string>> {
  try {
    const { values } = parseArgs({ args: [...argv], options: Object.fromEntries(names.map((n) => [n, { type: 'string' as const }])), strict: true, allowPositionals: false });
    return values as Partial<Record<K, string>>;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
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
        idle: { type: 'string' },
        'idle-wait': { type: 'string' },
        'cli-runs': { type: 'string' },
        ksm: { type: 'boolean' },
        'tb-size': { type: 'string' },
        out: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const memory = memoryOption(values.memory, '512M');
  const idleWait = Number(values['idle-wait'] ?? '10');
  if (!(idleWait >= 0)) throw new UsageError(`--idle-wait must be a number of seconds ≥ 0, got "${values['idle-wait']}"`);
  return {
    children: positiveInt('children', values.children, 10),
    coldRuns: positiveInt('cold-runs', values['cold-runs'], 3),
    memory,
    parallel: positiveInt('parallel', values.parallel, 10),
    idleChildren: positiveInt('idle', values.idle, 20),
    idleWaitMs: Math.round(idleWait * 1000),
    cliRuns: positiveInt('cli-runs', values['cli-runs'], 3),
    ksm: values.ksm ?? false,
    ...(values['tb-size'] !== undefined ? { tbSizeMiB: positiveInt('tb-size', values['tb-size'], 0) } : {}),
    outDir: values.out ?? defaultOutDir,
  };
}
