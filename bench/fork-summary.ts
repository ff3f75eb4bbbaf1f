import type { ChildSample, ForkBenchRaw, ForkSummary, PhaseStats, TargetVerdict } from './fork-result.js';
import { describe, roundStats, type Stats } from '../src/util/index.js';

/** The targets for this machine under TCG (2 cores, software emulation). */
export const FORK_TARGETS = {
  readyP50Ms: 250,
  idlePssMeanMiB: 40,
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
    for (const s of c.identitySteps) {
      if (s.ms === undefined) continue;
      byStep.set(s.step, [...(byStep.get(s.step) ?? []), s.ms]);
    }
  }
  const out: Record<string, Stats> = {};
  for (const [step, ms] of byStep) {
    const s = stats(ms);
    if (s) out[step] = s;
  }
  return out;
}

function memorySummary(raw: ForkBenchRaw, memoryMiB: number | undefined): ForkSummary['memory'] {
  const m = raw.memory;
  if (!m) return undefined;
  const mib = (kib: number): number => kib / KIB_PER_MIB;
  const c = m.children.map((x) => x.memory);
  const sumPssMiB = mib(c.reduce((s, x) => s + x.pssKiB, 0));
  return {
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
}

/** Pure: every summary figure from the raw samples. */
export function summarizeFork(raw: ForkBenchRaw): ForkSummary {
  const coldBootSeconds = roundStats(describe(raw.coldBoots.map((b) => b.secondsToAgent)), 3);
  const seq = raw.rounds.find((r) => r.kind === 'sequential');
  const allChildren = raw.rounds.flatMap((r) => r.children);
  const probed = allChildren.filter((c) => c.probeError === undefined);
  const templateBootId = raw.template?.bootId;
  const readyMs = seq ? stats(seq.children.map((c) => c.timings.readyMs)) : undefined;
  const summary: ForkSummary = {
    coldBootSeconds,
    parallel: raw.rounds
      .filter((r) => r.kind === 'parallel')
      .map((r) => ({ count: r.count, concurrency: r.concurrency, wallMs: r.wallMs, failed: r.failed.length, readyMs: stats(r.children.map((c) => c.timings.readyMs)) })),
    memory: memorySummary(raw, raw.template?.memoryMiB),
    overlayMiB: stats(
      probed.filter((c) => c.overlayBytes !== undefined).map((c) => (c.overlayBytes as number) / 1024 ** 2),
      2,
    ),
    overlayDataMiB: stats(
      probed.filter((c) => c.overlayDataBytes !== undefined).map((c) => (c.overlayDataBytes as number) / 1024 ** 2),
      2,
    ),
    reboots: {
      checked: probed.filter((c) => c.bootId !== undefined).length,
      rebooted: probed.filter((c) => c.bootId !== undefined && c.bootId !== templateBootId).length,
      unreadable: allChildren.length - probed.length,
    },
  };
  if (raw.template) {
    const t = raw.template;
    summary.template = {
      coldBootSeconds: t.coldBootSeconds,
      prepareMs: t.prepareMs,
      cutMs: t.cutMs,
      createSeconds: Math.round((t.coldBootSeconds + (t.prepareMs + t.cutMs) / 1000) * 1000) / 1000,
      wallSeconds: Math.round(t.wallMs) / 1000,
    };
  }
  if (seq) {
    summary.sequential = {
      n: seq.children.length,
      failed: seq.failed.length,
      runningMs: stats(seq.children.map((c) => c.timings.runningMs)),
      readyMs,
      phases: phases(seq.children),
      identityStepsMs: identitySteps(seq.children),
    };
  }
  if (coldBootSeconds && readyMs && readyMs.p50 > 0) summary.readySpeedup = Math.round((coldBootSeconds.p50 * 1000) / readyMs.p50);
  return summary;
}

function verdict(value: number | undefined, limit: number): boolean | undefined {
  return value === undefined ? undefined : value <= limit;
}

/** Pure: the targets judged against the summary. */
export function judgeTargets(s: ForkSummary): TargetVerdict[] {
  const ready = s.sequential?.readyMs?.p50;
  const pss = s.memory?.pssMiB?.mean;
  const overlay = s.overlayMiB?.p50;
  const reboots = s.reboots.checked ? s.reboots.rebooted : undefined;
  return [
    { id: 'ready', label: 'fork → customized-ready', statistic: 'p50', value: ready, unit: 'ms', limit: FORK_TARGETS.readyP50Ms, met: verdict(ready, FORK_TARGETS.readyP50Ms) },
    { id: 'pss', label: 'idle child PSS', statistic: 'mean', value: pss, unit: 'MiB', limit: FORK_TARGETS.idlePssMeanMiB, met: verdict(pss, FORK_TARGETS.idlePssMeanMiB) },
    { id: 'overlay', label: 'overlay after identity', statistic: 'p50', value: overlay, unit: 'MiB', limit: FORK_TARGETS.overlayP50MiB, met: verdict(overlay, FORK_TARGETS.overlayP50MiB) },
    { id: 'reboots', label: 'children that rebooted', statistic: 'count', value: reboots, unit: '', limit: 0, met: verdict(reboots, 0) },
  ];
}
