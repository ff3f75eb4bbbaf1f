import { availableParallelism } from 'node:os';
import { forkChildren, warmTemplate } from '../src/fork/index.js';
import { createTemplate, DEFAULT_TCG_TB_SIZE_MIB, forkPathOf } from '../src/template/index.js';
import { bootVm, destroyVm, showVm, type VmDeps } from '../src/vm/index.js';
import { childSample, probeChild, readMemories } from './child-probes.js';
import type { ChildSample, ColdBootSample, ForkBenchOptions, MemorySample, RoundKind, RoundSample, TemplateSample } from './fork-result.js';

export type Progress = (message: string) => void;

/** The baseline: boot → agent answering, each VM destroyed before the next so they never share the cores. */
export async function measureColdBoots(deps: VmDeps, opts: Pick<ForkBenchOptions, 'coldRuns' | 'memory'>, progress: Progress): Promise<ColdBootSample[]> {
  const out: ColdBootSample[] = [];
  for (let i = 1; i <= opts.coldRuns; i++) {
    const r = await bootVm(deps, { image: 'default', name: `cold${i}`, memory: opts.memory });
    try {
      out.push({ name: r.name, secondsToAgent: r.secondsToAgent, bootId: r.bootId });
      progress(`cold boot ${i}/${opts.coldRuns}: ${r.secondsToAgent.toFixed(1)} s to agent (${r.accel})`);
    } finally {
      await destroyVm(deps, r.name);
    }
  }
  return out;
}

export async function measureTemplate(deps: VmDeps, name: string, image: string, opts: Pick<ForkBenchOptions, 'memory' | 'tbSizeMiB'>, progress: Progress): Promise<TemplateSample> {
  const t0 = performance.now();
  const record = await createTemplate(deps, { name, image, memory: opts.memory, ...(opts.tbSizeMiB !== undefined ? { tbSizeMiB: opts.tbSizeMiB } : {}) });
  const wallMs = performance.now() - t0;
  const forkPath = forkPathOf(record);
  progress(`template ${name} (${forkPath} path): boot ${record.coldBootSeconds.toFixed(1)} s, prepare ${record.prepareMs} ms, cut ${record.cutMs} ms, wall ${(wallMs / 1000).toFixed(1)} s`);
  return {
    name,
    image,
    forkPath,
    coldBootSeconds: record.coldBootSeconds,
    prepareMs: record.prepareMs,
    cutMs: record.cutMs,
    wallMs: Math.round(wallMs),
    bootId: record.bootId,
    memoryMiB: record.memoryMiB,
    ...(record.accel === 'tcg' ? { tbSizeMiB: opts.tbSizeMiB ?? DEFAULT_TCG_TB_SIZE_MIB } : {}),
    stateBytes: record.files.state.size,
    ramBytes: record.files.ram.size,
    ramPath: record.files.ram.path,
  };
}

/**
 * Forks one round. cold / warm: the latency figures — one child at a time, each probed and destroyed before the
 * next, so no child competes with a sibling (its service kicks are judged before it counts as done, the engine's
 * default) — from fresh QEMUs, or each from a warm process the caller launched. parallel / idle: N at the engine's
 * default concurrency, as `vmfork fork --count N` does (no wait for the service kicks), for the wall time; the
 * caller probes and destroys them.
 */
export async function forkRound(deps: VmDeps, template: string, kind: RoundKind, label: string, count: number, progress: Progress): Promise<RoundSample> {
  const oneAtATime = kind === 'cold' || kind === 'warm';
  const round: RoundSample = { kind, label, count, concurrency: oneAtATime ? 1 : Math.min(availableParallelism(), count), wallMs: 0, children: [], failed: [] };
  const batches = oneAtATime ? Array.from({ length: count }, (_, i) => [`${label}-${i + 1}`]) : [Array.from({ length: count }, (_, i) => `${label}-${i + 1}`)];
  for (const names of batches) {
    const batch = await forkChildren(deps, { template, count: names.length, names, useWarm: kind === 'warm', ...(oneAtATime ? {} : { awaitKicks: false }) });
    round.wallMs += batch.wallMs;
    const children = batch.children.map(childSample);
    round.children.push(...children);
    round.failed.push(...batch.failed.map((f) => ({ name: f.name, code: f.error.code, message: f.error.message.split('\n')[0] ?? '' })));
    if (oneAtATime) await probeAndDestroy(deps, children);
  }
  const ready = round.children.map((c) => Math.round(c.timings.readyMs)).join(' ');
  const warm = round.children.filter((c) => c.fromWarm).length;
  progress(`${label}: ${round.children.length}/${count} ready${oneAtATime ? ' one at a time' : ` in ${(round.wallMs / 1000).toFixed(2)} s`}${warm ? ` (${warm} from warm processes)` : ''} (ready ms: ${ready})${round.failed.length ? `; ${round.failed.length} FAILED: ${round.failed[0]?.message}` : ''}`);
  return round;
}

/**
 * The warm round: `count` warm processes launched (and their memory read: what one costs while it waits), then
 * `count` children forked one at a time, each taking one. No refill: library callers start none, so nothing
 * competes with the forks measured.
 */
export async function warmRound(deps: VmDeps, t: TemplateSample, label: string, count: number, progress: Progress): Promise<{ round: RoundSample; warmProcesses: MemorySample[] }> {
  const warmed = await warmTemplate(deps, t.name, { count });
  if (warmed.failed.length) progress(`warm: ${warmed.failed.length} failed: ${warmed.failed[0]?.error.message}`);
  // a few seconds for the QEMUs to settle at -incoming defer before they are read
  await new Promise((r) => setTimeout(r, 3_000));
  const procs: { name: string; pid: number }[] = [];
  for (const name of warmed.warm) {
    const pid = ((await showVm(deps, name)).process as { pid: number } | null)?.pid;
    if (pid) procs.push({ name, pid });
  }
  const warmProcesses = await readMemories(procs, t.ramPath);
  progress(`${warmed.warm.length} warm processes for ${t.name}: PSS ${warmProcesses.map((m) => (m.memory.pssKiB / 1024).toFixed(1)).join(' ')} MiB`);
  const round = await forkRound(deps, t.name, 'warm', label, count, progress);
  await warmTemplate(deps, t.name, { count: 0 });
  return { round, warmProcesses };
}

/** boot_id and overlay size of each child, then destroys them all (the next round starts empty). */
export async function probeAndDestroy(deps: VmDeps, children: readonly ChildSample[]): Promise<void> {
  try {
    for (const c of children) await probeChild(deps, c);
  } finally {
    for (const c of children) await destroyVm(deps, c.name);
  }
}
