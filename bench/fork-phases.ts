import { availableParallelism } from 'node:os';
import { forkChildren } from '../src/fork/index.js';
import { createTemplate, DEFAULT_TCG_TB_SIZE_MIB } from '../src/template/index.js';
import { bootVm, destroyVm, type VmDeps } from '../src/vm/index.js';
import { childSample, probeChild } from './child-probes.js';
import type { ColdBootSample, ForkBenchOptions, RoundSample, TemplateSample } from './fork-result.js';

export type Progress = (message: string) => void;

export const BENCH_TEMPLATE = 'bench';

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

export async function measureTemplate(deps: VmDeps, opts: Pick<ForkBenchOptions, 'memory' | 'tbSizeMiB'>, progress: Progress): Promise<TemplateSample> {
  const t0 = performance.now();
  const record = await createTemplate(deps, {
    name: BENCH_TEMPLATE,
    image: 'default',
    memory: opts.memory,
    ...(opts.tbSizeMiB !== undefined ? { tbSizeMiB: opts.tbSizeMiB } : {}),
  });
  const wallMs = performance.now() - t0;
  progress(`template: boot ${record.coldBootSeconds.toFixed(1)} s, prepare ${record.prepareMs} ms, cut ${record.cutMs} ms, wall ${(wallMs / 1000).toFixed(1)} s`);
  return {
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
 * Forks one round. `concurrency: 1` gives the latency figures (no child slowed by a sibling); undefined uses the
 * engine's default, as `vmfork fork --count N` does, for the wall-time figures.
 */
export async function forkRound(
  deps: VmDeps,
  kind: RoundSample['kind'],
  label: string,
  count: number,
  progress: Progress,
): Promise<RoundSample> {
  const concurrency = kind === 'sequential' ? 1 : undefined;
  const batch = await forkChildren(deps, {
    template: BENCH_TEMPLATE,
    count,
    namePattern: `${label}-{n}`,
    ...(concurrency !== undefined ? { concurrency } : {}),
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
  progress(`${label}: ${round.children.length}/${count} ready in ${(batch.wallMs / 1000).toFixed(2)} s (ready ms: ${ready})${round.failed.length ? `; ${round.failed.length} FAILED: ${round.failed[0]?.message}` : ''}`);
  return round;
}

/** boot_id and overlay size of every child of the round, then destroys them all (the next round starts empty). */
export async function probeAndDestroy(deps: VmDeps, round: RoundSample): Promise<void> {
  try {
    for (const c of round.children) await probeChild(deps, c);
  } finally {
    for (const c of round.children) await destroyVm(deps, c.name);
  }
}
