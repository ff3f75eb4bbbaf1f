import type {
  ChildSample,
  CliSample,
  CliSummary,
  ForkBenchRaw,
  ForkSummary,
  MemoryRound,
  MemorySample,
  MemorySummary,
  PathRun,
  PathSummary,
  PhaseStats,
  RoundKind,
  RoundSummary,
  TargetVerdict,
} from './fork-result.js';
import { describe, roundStats, type Stats } from '../src/util/index.js';

/** The targets for this machine under TCG (2 cores, software emulation), judged on the agent path. */
export const FORK_TARGETS = {
  readyColdP50Ms: 400,
  readyWarmP50Ms: 250,
  parallelWallMs: 3_000,
  idlePssMeanMiB: 48,
  cliSpeedup: 20,
  overlayP50MiB: 2,
} as const;

const KIB_PER_MIB = 1024;

function stats(samples: readonly number[], digits = 1): Stats | undefined {
  return roundStats(describe(samples), digits);
}

function phases(children: readonly ChildSample[]): PhaseStats {
  const t = children.map((c) => c.timings);
  return {
    launchMs: stats(t.map((x) => x.qmpMs)),
    loadMs: stats(t.map((x) => x.loadedMs - x.qmpMs)),
    contMs: stats(t.map((x) => x.runningMs - x.loadedMs)),
    agentMs: stats(t.map((x) => x.agentMs - x.runningMs)),
    identityMs: stats(t.map((x) => x.readyMs - x.agentMs)),
  };
}

function identitySteps(children: readonly ChildSample[]): Record<string, Stats> {
  const byStep = new Map<string, number[]>();
  for (const c of children) {
    for (const s of c.identitySteps) if (s.ms !== undefined) byStep.set(s.step, [...(byStep.get(s.step) ?? []), s.ms]);
  }
  const out: Record<string, Stats> = {};
  for (const [step, ms] of byStep) {
    const s = stats(ms);
    if (s) out[step] = s;
  }
  return out;
}

function roundSummary(run: PathRun, kind: RoundKind): RoundSummary | undefined {
  const r = run.rounds.find((x) => x.kind === kind);
  if (!r) return undefined;
  return {
    n: r.children.length,
    failed: r.failed.length,
    wallMs: r.wallMs,
    concurrency: r.concurrency,
    runningMs: stats(r.children.map((c) => c.timings.runningMs)),
    readyMs: stats(r.children.map((c) => c.timings.readyMs)),
    phases: phases(r.children),
    identityStepsMs: identitySteps(r.children),
  };
}

const mib = (kib: number): number => kib / KIB_PER_MIB;

function memorySummary(m: MemoryRound | undefined, memoryMiB: number | undefined): MemorySummary | undefined {
  if (!m) return undefined;
  const c = m.children.map((x) => x.memory);
  const sumPssMiB = mib(c.reduce((s, x) => s + x.pssKiB, 0));
  const out: MemorySummary = {
    n: c.length,
    pssMiB: stats(c.map((x) => mib(x.pssKiB))),
    guestRamPssMiB: stats(c.map((x) => mib(x.guestRam.pssKiB))),
    guestRamCowMiB: stats(c.map((x) => mib(x.guestRam.privateDirtyKiB))),
    tcgCachePssMiB: stats(c.map((x) => mib(x.tcgCache.pssKiB))),
    otherPssMiB: stats(c.map((x) => mib(x.pssKiB - x.guestRam.pssKiB - x.tcgCache.pssKiB))),
    sumPssMiB: Math.round(sumPssMiB * 10) / 10,
    nominalMiB: m.count * (memoryMiB ?? 0),
    memAvailableDropMiB: Math.round(mib(m.memAvailableBeforeKiB - m.memAvailableAfterKiB) * 10) / 10,
  };
  if (m.ksm) {
    const k = m.ksm.children.map((x) => x.memory);
    out.ksm = { pssMiB: stats(k.map((x) => mib(x.pssKiB))), guestRamCowMiB: stats(k.map((x) => mib(x.guestRam.privateDirtyKiB))), pagesSharing: m.ksm.pagesSharing, waitMs: m.ksm.waitMs };
  }
  return out;
}

function pathSummary(run: PathRun): PathSummary {
  const t = run.template;
  const out: PathSummary = {
    path: run.path,
    cold: roundSummary(run, 'cold'),
    warm: roundSummary(run, 'warm'),
    parallel: roundSummary(run, 'parallel'),
    warmProcessPssMiB: stats(run.warmProcesses.map((w: MemorySample) => mib(w.memory.pssKiB))),
    memory: memorySummary(run.memory, t?.memoryMiB),
  };
  if (t) {
    const createSeconds = Math.round((t.coldBootSeconds + (t.prepareMs + t.cutMs) / 1000) * 1000) / 1000;
    out.template = { coldBootSeconds: t.coldBootSeconds, prepareMs: t.prepareMs, cutMs: t.cutMs, createSeconds, wallSeconds: Math.round(t.wallMs) / 1000 };
  }
  return out;
}

function cliSummary(samples: readonly CliSample[], coldBootSeconds: Stats | undefined): CliSummary {
  const wallMs = stats(samples.map((s) => s.wallMs));
  const out: CliSummary = { wallMs, readyMs: stats(samples.map((s) => s.readyMs)), overheadMs: stats(samples.map((s) => s.wallMs - s.readyMs)) };
  if (coldBootSeconds && wallMs && wallMs.p50 > 0) out.speedup = Math.round((coldBootSeconds.p50 * 1000 * 10) / wallMs.p50) / 10;
  return out;
}

/** Pure: every summary figure from the raw samples. */
export function summarizeFork(raw: ForkBenchRaw): ForkSummary {
  const coldBootSeconds = roundStats(describe(raw.coldBoots.map((b) => b.secondsToAgent)), 3);
  // reboots and overlays: every child probed, of either path, judged against its own template's boot_id
  const probed = raw.paths.flatMap((p) => p.rounds.flatMap((r) => r.children.map((c) => ({ c, bootId: p.template?.bootId }))));
  const ok = probed.filter(({ c }) => c.probeError === undefined && c.bootId !== undefined);
  const overlays = ok.filter(({ c }) => c.overlayBytes !== undefined).map(({ c }) => c);
  const g = raw.agentInGuest;
  return {
    coldBootSeconds,
    paths: raw.paths.map(pathSummary),
    cli: {
      cold: cliSummary(raw.cli.filter((s) => s.mode === 'cold'), coldBootSeconds),
      warm: cliSummary(raw.cli.filter((s) => s.mode === 'warm'), coldBootSeconds),
      nodeMs: stats(raw.cliStart?.nodeMs ?? []),
      bundledHelpMs: stats(raw.cliStart?.bundledHelpMs ?? []),
      unbundledHelpMs: stats(raw.cliStart?.unbundledHelpMs ?? []),
    },
    overlayMiB: stats(overlays.map((c) => (c.overlayBytes as number) / 1024 ** 2), 2),
    overlayDataMiB: stats(overlays.filter((c) => c.overlayDataBytes !== undefined).map((c) => (c.overlayDataBytes as number) / 1024 ** 2), 2),
    reboots: {
      checked: ok.length,
      rebooted: ok.filter(({ c, bootId }) => c.bootId !== bootId).length,
      unreadable: probed.filter(({ c }) => c.probeError !== undefined).length,
    },
    ...(g ? { agentInGuestMiB: { rss: Math.round(mib(g.rssKiB) * 10) / 10, pss: Math.round(mib(g.pssKiB) * 10) / 10, privateDirty: Math.round(mib(g.privateDirtyKiB) * 10) / 10 } } : {}),
  };
}

function verdict(value: number | undefined, limit: number, direction: 'max' | 'min'): boolean | undefined {
  if (value === undefined) return undefined;
  return direction === 'max' ? value <= limit : value >= limit;
}

/** Pure: the targets judged against the summary (the agent path: what vmfork does with an image that has it). */
export function judgeTargets(s: ForkSummary): TargetVerdict[] {
  const agent = s.paths.find((p) => p.path === 'agent');
  const reboots = s.reboots.checked ? s.reboots.rebooted : undefined;
  const T = FORK_TARGETS;
  const rows: Omit<TargetVerdict, 'met'>[] = [
    { id: 'ready-cold', label: 'fork → customized-ready, fresh QEMU', statistic: 'p50', value: agent?.cold?.readyMs?.p50, unit: 'ms', limit: T.readyColdP50Ms, direction: 'max' },
    { id: 'ready-warm', label: 'fork → customized-ready, warm QEMU', statistic: 'p50', value: agent?.warm?.readyMs?.p50, unit: 'ms', limit: T.readyWarmP50Ms, direction: 'max' },
    { id: 'parallel', label: 'children in parallel, all ready', statistic: 'wall', value: agent?.parallel?.wallMs, unit: 'ms', limit: T.parallelWallMs, direction: 'max' },
    { id: 'pss', label: 'idle child PSS', statistic: 'mean', value: agent?.memory?.pssMiB?.mean, unit: 'MiB', limit: T.idlePssMeanMiB, direction: 'max' },
    { id: 'cli-cold', label: '`vmfork fork --count 1` vs a cold boot, fresh QEMU', statistic: 'p50 ratio', value: s.cli.cold.speedup, unit: '×', limit: T.cliSpeedup, direction: 'min' },
    { id: 'cli-warm', label: '`vmfork fork --count 1` vs a cold boot, warm QEMU', statistic: 'p50 ratio', value: s.cli.warm.speedup, unit: '×', limit: T.cliSpeedup, direction: 'min' },
    { id: 'overlay', label: 'overlay after identity', statistic: 'p50', value: s.overlayMiB?.p50, unit: 'MiB', limit: T.overlayP50MiB, direction: 'max' },
    { id: 'reboots', label: 'children that rebooted', statistic: 'count', value: reboots, unit: '', limit: 0, direction: 'max' },
  ];
  return rows.map((r) => ({ ...r, met: verdict(r.value, r.limit, r.direction) }));
}
