import type { Stats } from '../src/util/index.js';
import type { LoadAvg, MachineFacts } from './machine-facts.js';

export interface ProvisionBenchOptions {
  /** Desktops in the pool (and in the traditional fleet). @default 10 */
  count: number;
  /** Traditional desktops customized at once. @default the number of CPUs */
  concurrency: number;
  /** Guest RAM of every desktop. @default 384M */
  memory: string;
  outDir: string;
}

export interface TraditionalVm {
  name: string;
  /** Linked clone → cold boot → phase 1 with its reboot → phase 2: ready. */
  readyMs: number;
  reboots: number;
}

export interface ProvisionBenchResult {
  benchmark: 'provision';
  version: 1;
  startedAt: string;
  finishedAt: string;
  options: ProvisionBenchOptions;
  machine: MachineFacts;
  load: { start: LoadAvg; end: LoadAvg };
  vmfork?: {
    /** Pool create to every desktop ready: phase 1 once + replica + template + forks with phase 2. */
    poolMs: number;
    steps: { replica: number; template: number; children: number };
    phase1Reboots: number;
    readyMs: Stats | null;
    /** A resize by one: the replica and template reused, one fork with its phase 2. */
    additionalMs: number;
  };
  traditional?: {
    poolMs: number;
    readyMs: Stats | null;
    reboots: number[];
    /** One more desktop alone. */
    additionalMs: number;
  };
  /** traditional ÷ vmfork. Goals: ≥ 10 for the pool, ≥ 100 per additional desktop. */
  ratios?: { pool: number; additional: number };
  error?: string;
}
