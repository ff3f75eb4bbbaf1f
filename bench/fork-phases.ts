import { availableParallelism } from 'node:os';
import { forkChildren, warmTemplate } from '../src/fork/index.js';
import { createTemplate, DEFAULT_TCG_TB_SIZE_MIB, forkPathOf } from '../src/template/index.js';
import { bootVm, destroyVm, showVm, type VmDeps } from '../src/vm/index.js';
import { childSample, probeChild, readMemories } from './child-probes.js';
import type { ColdBootSample, ForkBenchOptions, MemorySample, RoundKind, RoundSample, TemplateSample } from './fork-result.js';

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
 * Forks one round. cold / warm: concurrency 1, the latency figures (no child slowed by a sibling) — from fresh QEMUs,
 * or each from a warm process the caller launched; parallel: the engine's default concurrency, as
 * `vmfork fork --count N` does (no wait for the service kicks), for the wall time. One at a time, the kicks are
 * judged (the engine's default) after `ready`, so no child competes with its predecessor's.
 */
export async function forkRound(deps: VmDeps, template: string, kind: RoundKind, label: string, count: number, progress: Progress): Promise<RoundSample> {
  const concurrency = kind === 'parallel' || kind === 'idle' ? undefined : 1;
  const batch = await forkChildren(deps, {
    template,
    count,
    namePattern: `${label}-{n}`,
    useWarm: kind === 'warm',
    // together, as `vmfork fork --count N` does: a child is handed out at ready, its service kicks left to the guest
    ...(concurrency !== undefined ? { concurrency } : { awaitKicks: false }),
  });
  const round: RoundSample = {
    kind,
    label,
    count,
    concurrency: Math.min(concurrency ?? availableParallelism(), count),
    wallMs: batch.wallMs,
    children: batch.children.map(childSample),
    failed: batch.failed.map((f) => ({ name: f.name, code: f.error.code, message: f.error.message.split('\n')[0] ?? '' })),
  };
  const ready = round.children.map((c) => Math.round(c.timings.readyMs)).join(' ');
  const warm = round.children.filter((c) => c.fromWarm).length;
  progress(`${label}: ${round.children.length}/${count} ready in ${(batch.wallMs / 1000).toFixed(2)} s${warm ? ` (${warm} from warm processes)` : ''} (ready ms: ${ready})${round.failed.length ? `; ${round.failed.length} FAILED: ${round.failed[0]?.message}` : ''}`);
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

/** boot_id and overlay size of every child of the round, then destroys them all (the next round starts empty). */
export async function probeAndDestroy(deps: VmDeps, round: RoundSample): Promise<void> {
  try {
    for (const c of round.children) await probeChild(deps, c);
  } finally {
    for (const c of round.children) await destroyVm(deps, c.name);
  }
}
