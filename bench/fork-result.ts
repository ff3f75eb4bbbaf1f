/**
 * The shape of bench/results/fork-<date>.json: every raw sample, the summary computed from them, and the facts
 * a reader needs to judge them (machine, load). Types only.
 */
import type { ForkTimings } from '../src/fork/index.js';
import type { LoadAvg, MachineFacts } from './machine-facts.js';
import type { ProcessMemory } from './smaps.js';
import type { Stats } from '../src/util/index.js';

export interface ForkBenchOptions {
  /** Children forked one after another (concurrency 1) for the latency figures. @default 10 */
  children: number;
  /** Cold boots for the baseline. @default 3 */
  coldRuns: number;
  /** Guest RAM of the baseline VMs and the template. @default '512M' */
  memory: string;
  /** Sizes of the parallel rounds, forked at the engine's default concurrency. @default [10, 20] */
  parallel: number[];
  /** How long the largest round idles before its memory is read. @default 5000 */
  idleWaitMs: number;
  /** TCG translation cache of the template (children inherit it); undefined = the engine's default. */
  tbSizeMiB?: number;
  /** Where the JSON and markdown go. @default bench/results */
  outDir: string;
}

export interface ColdBootSample {
  name: string;
  secondsToAgent: number;
  bootId: string;
}

export interface TemplateSample {
  coldBootSeconds: number;
  prepareMs: number;
  cutMs: number;
  /** Whole createTemplate call: boot + prepare + cut + sealing (hashing) the files. */
  wallMs: number;
  bootId: string;
  memoryMiB: number;
  tbSizeMiB?: number;
  stateBytes: number;
  ramBytes: number;
  /** The template RAM file: the mapping whose PSS and Private_Dirty are read in each child. */
  ramPath: string;
}

export interface ChildSample {
  name: string;
  pid: number;
  timings: ForkTimings;
  /** Host-side wall time of the identity pipeline (agent round trips included). */
  identityTotalMs: number;
  /** Guest-side duration of each identity step (10 ms resolution). */
  identitySteps: { step: string; ok: boolean; ms?: number }[];
  /** boot_id read from the guest after the round; equal to the template's means the child never rebooted. */
  bootId?: string;
  /** Allocated bytes of the child's disk.qcow2 after identity and a guest `sync`. */
  overlayBytes?: number;
  /** Of those, guest data clusters held by the overlay itself (qemu-img map, depth 0); the rest is qcow2 metadata. */
  overlayDataBytes?: number;
  probeError?: string;
}

export interface RoundSample {
  /** sequential: concurrency 1, the latency figures; parallel: the engine's default concurrency, the wall times. */
  kind: 'sequential' | 'parallel';
  label: string;
  count: number;
  concurrency: number;
  /** forkChildren wall time: planning (template checks) + every child to ready. */
  wallMs: number;
  children: ChildSample[];
  failed: { name: string; code: string; message: string }[];
}

export interface MemorySample {
  name: string;
  pid: number;
  memory: ProcessMemory;
}

export interface MemoryRound {
  /** Children alive while memory was read. */
  count: number;
  idleWaitMs: number;
  /** Host MemAvailable just before the round was forked and after the idle wait: a cross-check of the PSS sum. */
  memAvailableBeforeKiB: number;
  memAvailableAfterKiB: number;
  children: MemorySample[];
}

export interface ForkBenchRaw {
  coldBoots: ColdBootSample[];
  template?: TemplateSample;
  rounds: RoundSample[];
  memory?: MemoryRound;
}

export interface PhaseStats {
  /** Record, lease + tap, overlay, QEMU spawn until QMP greets. */
  launchMs?: Stats;
  /** migrate-incoming of the device state until `paused`. */
  loadMs?: Stats;
  /** `cont` itself. */
  contMs?: Stats;
  /** cont → guest agent answers. */
  agentMs?: Stats;
  /** Identity pipeline, applied and verified. */
  identityMs?: Stats;
}

export interface ForkSummary {
  coldBootSeconds?: Stats;
  template?: { coldBootSeconds: number; prepareMs: number; cutMs: number; createSeconds: number; wallSeconds: number };
  sequential?: { n: number; failed: number; runningMs?: Stats; readyMs?: Stats; phases: PhaseStats; identityStepsMs: Record<string, Stats> };
  parallel: { count: number; concurrency: number; wallMs: number; failed: number; readyMs?: Stats }[];
  memory?: {
    n: number;
    pssMiB?: Stats;
    guestRamPssMiB?: Stats;
    guestRamCowMiB?: Stats;
    tcgCachePssMiB?: Stats;
    /** PSS that is neither guest RAM nor TCG cache: QEMU's heap, libraries, device buffers. */
    otherPssMiB?: Stats;
    sumPssMiB: number;
    nominalMiB: number;
    memAvailableDropMiB: number;
  };
  overlayMiB?: Stats;
  overlayDataMiB?: Stats;
  reboots: { checked: number; rebooted: number; unreadable: number };
  /** Cold boot p50 ÷ fork-to-ready p50. */
  readySpeedup?: number;
}

export interface TargetVerdict {
  id: string;
  label: string;
  /** Which statistic is judged, e.g. `p50`. */
  statistic: string;
  value?: number;
  unit: string;
  limit: number;
  /** undefined: not measured (the phase failed or produced no sample). */
  met?: boolean;
}

export interface ForkBenchResult {
  benchmark: 'fork';
  version: 1;
  startedAt: string;
  finishedAt: string;
  options: ForkBenchOptions;
  machine: MachineFacts;
  load: { start: LoadAvg; atMemory?: LoadAvg; end: LoadAvg };
  raw: ForkBenchRaw;
  summary: ForkSummary;
  targets: TargetVerdict[];
  /** Set when a phase failed: what ran before it is still reported. */
  error?: string;
}
