/**
 * The shape of bench/results/fork-<date>.json (version 2): every raw sample, the summary computed from them, and
 * the facts a reader needs to judge them (machine, load). Types only.
 */
import type { ForkTimings } from '../src/fork/index.js';
import type { ForkPath } from '../src/template/index.js';
import type { LoadAvg, MachineFacts } from './machine-facts.js';
import type { ProcessMemory } from './smaps.js';
import type { Stats } from '../src/util/index.js';

export type { ForkPath };

export interface ForkBenchOptions {
  /** Children forked one after another (concurrency 1), per path, from cold processes and again from warm ones. @default 10 */
  children: number;
  /** Cold boots for the baseline. @default 3 */
  coldRuns: number;
  /** Guest RAM of the baseline VMs and the templates. @default '512M' */
  memory: string;
  /** Children forked together per path (the engine's default concurrency, as `vmfork fork --count N`). @default 10 */
  parallel: number;
  /** Idle children per path whose memory is read. @default 20 */
  idleChildren: number;
  /** How long they idle before their memory is read. @default 10000 */
  idleWaitMs: number;
  /** `vmfork fork --count 1` calls (the bundled binary) with and without a warm process each. @default 3 */
  cliRuns: number;
  /** Also read the idle agent-path children after KSM (host-wide, restored after) had time to merge. @default false */
  ksm: boolean;
  /** TCG translation cache of the templates (children inherit it); undefined = the engine's default. */
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
  name: string;
  image: string;
  forkPath: ForkPath;
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
  fromWarm: boolean;
  timings: ForkTimings;
  /** Host-side wall time of the identity apply (agent round trips included). */
  identityTotalMs: number;
  /** Guest-side duration of each identity step (agent: µs rounded to ms; script: 10 ms resolution). */
  identitySteps: { step: string; ok: boolean; ms?: number }[];
  /** boot_id read from the guest after the round; equal to the template's means the child never rebooted. */
  bootId?: string;
  /** Allocated bytes of the child's disk.qcow2 after identity and a guest `sync`. */
  overlayBytes?: number;
  /** Of those, guest data clusters held by the overlay itself (qemu-img map, depth 0); the rest is qcow2 metadata. */
  overlayDataBytes?: number;
  probeError?: string;
}

export type RoundKind = 'cold' | 'warm' | 'parallel' | 'idle';

export interface RoundSample {
  /**
   * cold / warm: one child at a time (latency) from a fresh QEMU or a warm one; parallel: N at the default
   * concurrency; idle: the children whose memory is read.
   */
  kind: RoundKind;
  label: string;
  count: number;
  concurrency: number;
  /** forkChildren wall time (summed over its calls one at a time): planning + every child to ready (+ kicks judged one at a time). */
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
  /** The same children read again after KSM ran (`--ksm`). */
  ksm?: { waitMs: number; pagesSharing: number; pagesShared: number; children: MemorySample[] };
}

export interface PathRun {
  path: ForkPath;
  template?: TemplateSample;
  rounds: RoundSample[];
  /** The warm processes of the warm round, read before any was taken: what a warm process costs. */
  warmProcesses: MemorySample[];
  memory?: MemoryRound;
}

/** One `vmfork fork --count 1` of the bundled binary, timed from the outside. */
export interface CliSample {
  mode: 'cold' | 'warm';
  wallMs: number;
  /** The child's own fork → ready, as the command reported it. */
  readyMs: number;
  fromWarm: boolean;
}

/** Where a CLI call's time goes before it forks anything: node alone, and loading the fork command's modules. */
export interface CliStartSample {
  nodeMs: number[];
  /** `vmfork fork --help` of the bundle (dist/cli) and of the plain compiled tree (dist/src). */
  bundledHelpMs: number[];
  unbundledHelpMs: number[];
}

export interface ForkBenchRaw {
  coldBoots: ColdBootSample[];
  paths: PathRun[];
  cli: CliSample[];
  cliStart?: CliStartSample;
  /** vmfork-guest's own memory in an idle child, read in the guest (KiB). */
  agentInGuest?: { rssKiB: number; pssKiB: number; privateDirtyKiB: number };
}

export interface PhaseStats {
  /** Record, lease + tap, overlay, QEMU spawn until QMP greets (0 for a warm process). */
  launchMs?: Stats;
  /** migrate-incoming of the device state until `paused`. */
  loadMs?: Stats;
  /** `cont` itself. */
  contMs?: Stats;
  /** cont → the guest answers (vmfork-guest HELLO, or qemu-ga's ping). */
  agentMs?: Stats;
  /** Identity applied and verified. */
  identityMs?: Stats;
}

export interface RoundSummary {
  n: number;
  failed: number;
  wallMs: number;
  concurrency: number;
  runningMs?: Stats;
  readyMs?: Stats;
  phases: PhaseStats;
  identityStepsMs: Record<string, Stats>;
}

export interface MemorySummary {
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
  ksm?: { pssMiB?: Stats; guestRamCowMiB?: Stats; pagesSharing: number; waitMs: number };
}

export interface PathSummary {
  path: ForkPath;
  template?: { coldBootSeconds: number; prepareMs: number; cutMs: number; createSeconds: number; wallSeconds: number };
  cold?: RoundSummary;
  warm?: RoundSummary;
  parallel?: RoundSummary;
  warmProcessPssMiB?: Stats;
  memory?: MemorySummary;
}

export interface CliSummary {
  wallMs?: Stats;
  readyMs?: Stats;
  /** Wall minus the child's ready time: what the command costs around the fork itself. */
  overheadMs?: Stats;
  /** Cold boot p50 ÷ wall p50. */
  speedup?: number;
}

export interface ForkSummary {
  coldBootSeconds?: Stats;
  paths: PathSummary[];
  cli: { cold: CliSummary; warm: CliSummary; nodeMs?: Stats; bundledHelpMs?: Stats; unbundledHelpMs?: Stats };
  overlayMiB?: Stats;
  overlayDataMiB?: Stats;
  reboots: { checked: number; rebooted: number; unreadable: number };
  agentInGuestMiB?: { rss: number; pss: number; privateDirty: number };
}

export interface TargetVerdict {
  id: string;
  label: string;
  /** Which statistic is judged, e.g. `p50`. */
  statistic: string;
  value?: number;
  unit: string;
  limit: number;
  /** `max`: the value must be ≤ limit; `min`: ≥ limit. */
  direction: 'max' | 'min';
  /** undefined: not measured (the phase failed or produced no sample). */
  met?: boolean;
}

export interface ForkBenchResult {
  benchmark: 'fork';
  version: 2;
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
