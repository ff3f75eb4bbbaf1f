import { memoryOption, positiveInt, stringOptions } from './bench-args.js';

export interface HostsBenchOptions {
  /** Children of the pool, on one host and then spread over three. */
  children: number;
  memory: string;
  /** `GET /v1/pools` calls per server, one at a time. */
  apiCalls: number;
  outDir: string;
}

export const HOSTS_USAGE = `usage: npm run bench -- hosts [options]
  --children N   pool size, on one test host and then spread over three (default 30)
  --memory SIZE  guest RAM of every child (default 384M)
  --api-calls N  GET /v1/pools calls per server, one at a time (default 50)
  --out DIR      where hosts-<date>.json and .md are written (default bench/results)`;

/** Pure: argv after `hosts` → options with every default applied; a bad flag throws a UsageError. */
export function parseHostsArgs(argv: readonly string[], defaultOutDir: string): HostsBenchOptions {
  const values = stringOptions(argv, ['children', 'memory', 'api-calls', 'out']);
  return {
    children: positiveInt('children', values.children, 30),
    memory: memoryOption(values.memory, '384M'),
    apiCalls: positiveInt('api-calls', values['api-calls'], 50),
    outDir: values.out ?? defaultOutDir,
  };
}
