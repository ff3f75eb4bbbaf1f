import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VmforkError } from '../src/errors.js';
import { describe, percentile, roundStats, run, waitUntil, type Stats } from '../src/util/index.js';
import { createBenchHome, runInHome } from './bench-home.js';
import { readLoadAvg, readMachineFacts, readMeminfoKiB, type LoadAvg, type MachineFacts } from './machine-facts.js';
import type { ScaleBenchOptions } from './scale-args.js';
import { measureCpu, qemuProcessesOf, readPssKiB } from './scale-probes.js';
import { startBenchServer, type BenchServer } from './scale-server.js';

type Progress = (message: string) => void;

const CLI = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');
const POOL = 'sc';
/** The smallest disposable disk a pool allows is 16M; 64M leaves /tmp 48M next to the default swap. */
const DISPOSABLE = '64M';

/** p50 / p99 of one kind of API call, client-side (request sent → body read), ms. */
export interface Latency {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

/** Everything measured once the pool has converged at one size. */
export interface ScaleStep {
  children: number;
  /** Children running (the pool's `counts.running`) when the step's task had succeeded. */
  running: number;
  /** The pool create (first step) or resize task, 202 → succeeded, ms. */
  wallMs: number;
  /** MemTotal − MemAvailable, MiB: absolute, and its growth since before the pool existed (other users included). */
  hostMemUsedMiB: number;
  hostMemGrowthMiB: number;
  pssMiB: Stats | null;
  /** Each child's QEMU over the window, % of one core; `totalPercent` sums them (100 = one core busy). */
  idleCpu: { windowSeconds: number; perChildPercent: Stats | null; totalPercent: number; serverPercent: number | null };
  listVmsMs: Latency | null;
  /** Claims of a ready child through the API (client-side ms); the server's own `tookMs` next to it. */
  claimMs: Latency | null;
  claimServerMs: Latency | null;
  load: LoadAvg;
}

export interface ScaleBenchResult {
  benchmark: 'scale';
  version: 1;
  startedAt: string;
  finishedAt: string;
  options: ScaleBenchOptions;
  machine: MachineFacts;
  load: { start: LoadAvg; end?: LoadAvg };
  /** MemTotal − MemAvailable before the pool, MiB. */
  hostMemUsedBeforeMiB?: number;
  steps: ScaleStep[];
  /** The steps not measured because they would have ended past --deadline, and why. */
  skipped?: { steps: number[]; reason: string };
  error?: string;
}

/**
 * Pure: whether the step to `next` children would end past the deadline, from the last step's pace (its wall per
 * child added, plus its measuring time). Before any step there is no pace: the first step always runs.
 */
export function stepWouldOverrun(last: { children: number; fromChildren: number; wallMs: number; measureMs: number } | undefined, next: number, elapsedMs: number, deadlineMs: number): boolean {
  if (!last) return false;
  const perChild = last.wallMs / Math.max(1, last.children - last.fromChildren);
  return elapsedMs + perChild * (next - last.children) + last.measureMs > deadlineMs;
}

function latency(samples: readonly number[]): Latency | null {
  if (samples.length === 0) return null;
  const r = (v: number | undefined): number => Math.round((v ?? 0) * 10) / 10;
  return { n: samples.length, p50: r(percentile(samples, 50)), p99: r(percentile(samples, 99)), max: r(Math.max(...samples)) };
}

async function memUsedMiB(): Promise<number> {
  return Math.round(((await readMeminfoKiB('MemTotal')) - (await readMeminfoKiB('MemAvailable'))) / 1024);
}

interface TaskReply {
  taskId: string;
}

/** Waits for a task through the API; anything but `succeeded` fails the run. */
async function taskDone(server: BenchServer, taskId: string, what: string): Promise<void> {
  const state = await waitUntil(
    async () => {
      const t = await server.call<{ state: string; lastError?: { message?: string } | null }>('GET', `/v1/tasks/${taskId}`);
      if (['succeeded', 'failed', 'cancelled'].includes(t.body.state)) return t.body;
      return undefined;
    },
    { deadlineMs: 3_600_000, everyMs: 2_000, what },
  );
  if (state.state !== 'succeeded') throw new VmforkError('VMFORK_FORK_FAILED', `${what}: ${state.state}: ${state.lastError?.message ?? ''}`);
}

function accepted(r: { status: number; body: unknown }, what: string): string {
  if (r.status !== 202) throw new VmforkError('VMFORK_FORK_FAILED', `${what}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  return (r.body as TaskReply).taskId;
}

/** Claims `count` ready children one at a time, then releases them all and waits for their refreshes. */
async function claimRound(server: BenchServer, count: number, progress: Progress): Promise<{ client: number[]; server: number[] }> {
  const client: number[] = [];
  const took: number[] = [];
  const vms: string[] = [];
  for (let i = 0; i < count; i++) {
    const c = await server.call<{ vm: string; tookMs: number; how: string }>('POST', `/v1/pools/${POOL}/claim`, { user: `bench${i}` });
    if (c.status !== 200) throw new VmforkError('VMFORK_FORK_FAILED', `claim ${i + 1}: HTTP ${c.status} ${JSON.stringify(c.body)}`);
    client.push(c.ms);
    took.push(c.body.tookMs);
    vms.push(c.body.vm);
  }
  const releases = await Promise.all(vms.map(async (vm) => accepted(await server.call('POST', `/v1/vms/${vm}/release`), `release ${vm}`)));
  for (const [i, id] of releases.entries()) await taskDone(server, id, `release of ${vms[i] ?? '?'}`);
  progress(`${count} claims: ${client.map((m) => Math.round(m)).join(' ')} ms; released and refreshed`);
  return { client, server: took };
}

async function measureStep(server: BenchServer, root: string, opts: ScaleBenchOptions, children: number, wallMs: number, memBefore: number, progress: Progress): Promise<ScaleStep> {
  const pool = await server.call<{ counts?: Record<string, number> }>('GET', `/v1/pools/${POOL}`);
  const running = pool.body.counts?.running ?? 0;
  progress(`${children} children: converged in ${(wallMs / 1000).toFixed(1)} s (${running} running); idling ${opts.idleWaitSeconds} s`);
  await new Promise((r) => setTimeout(r, opts.idleWaitSeconds * 1000));
  const procs = (await qemuProcessesOf(root)).filter((p) => p.name.startsWith(`${POOL}-`));
  const cpu = await measureCpu([...procs, { name: 'server', pid: server.pid }], opts.cpuWindowSeconds);
  const childCpu = cpu.perProcess.filter((p) => p.name !== 'server').map((p) => p.percent);
  const serverCpu = cpu.perProcess.find((p) => p.name === 'server')?.percent;
  const load = await readLoadAvg(root);
  const pss = await readPssKiB(procs);
  const used = await memUsedMiB();
  const total = childCpu.reduce((a, b) => a + b, 0);
  progress(`${procs.length} QEMUs idle: ${(total / Math.max(1, childCpu.length)).toFixed(2)} % of a core each, ${total.toFixed(1)} % in all; load ${load.one}`);
  const list: number[] = [];
  for (let i = 0; i < opts.listCalls; i++) {
    const r = await server.call<unknown[]>('GET', '/v1/vms');
    if (r.status !== 200) throw new VmforkError('VMFORK_FORK_FAILED', `GET /v1/vms: HTTP ${r.status}`);
    list.push(r.ms);
  }
  const claims = await claimRound(server, Math.min(opts.claims, children), progress);
  return {
    children,
    running,
    wallMs: Math.round(wallMs),
    hostMemUsedMiB: used,
    hostMemGrowthMiB: used - memBefore,
    pssMiB: roundStats(describe(pss.map((k) => k / 1024)), 1) ?? null,
    idleCpu: {
      windowSeconds: Math.round(cpu.seconds * 10) / 10,
      perChildPercent: roundStats(describe(childCpu), 3) ?? null,
      totalPercent: Math.round(total * 10) / 10,
      serverPercent: serverCpu === undefined ? null : Math.round(serverCpu * 100) / 100,
    },
    listVmsMs: latency(list),
    claimMs: latency(claims.client),
    claimServerMs: latency(claims.server),
    load,
  };
}

/**
 * A pool grown to each step's size through the real server (`vmfork serve` in its own process, over HTTP): the
 * create, then one resize per step, each measured once converged and idle. Claims are released and their
 * refreshes waited for before the next step, so every step starts from a full pool of ready children.
 */
export async function runScaleBench(opts: ScaleBenchOptions, progress: Progress): Promise<ScaleBenchResult> {
  const startedAt = new Date().toISOString();
  const h = await createBenchHome();
  const result: Omit<ScaleBenchResult, 'finishedAt'> = {
    benchmark: 'scale',
    version: 1,
    startedAt,
    options: opts,
    machine: await readMachineFacts(tmpdir()),
    load: { start: await readLoadAvg(h.root) },
    steps: [],
  };
  await runInHome(h, result, progress, async () => {
    await run(process.execPath, [CLI, '--home', h.root, 'image', 'build', '--name', 'default'], { timeoutMs: 3_600_000 });
    const memBefore = await memUsedMiB();
    result.hostMemUsedBeforeMiB = memBefore;
    const server = await startBenchServer(h.root);
    progress(`vmfork serve pid ${server.pid} on ${server.url}`);
    try {
      await growAndMeasure(server, h.root, opts, memBefore, result, progress);
    } finally {
      // before the cleanup: a server still running would re-fork the children the cleanup destroys
      await server.stop();
    }
  });
  return { ...result, load: { ...result.load, end: await readLoadAvg() }, finishedAt: new Date().toISOString() };
}

async function growAndMeasure(server: BenchServer, root: string, opts: ScaleBenchOptions, memBefore: number, result: Pick<ScaleBenchResult, 'steps' | 'skipped'>, progress: Progress): Promise<void> {
  const start = performance.now();
  let last: Parameters<typeof stepWouldOverrun>[0];
  for (const [i, children] of opts.steps.entries()) {
    if (opts.deadlineMinutes !== undefined && stepWouldOverrun(last, children, performance.now() - start, opts.deadlineMinutes * 60_000)) {
      result.skipped = { steps: opts.steps.slice(i), reason: `would end past --deadline ${opts.deadlineMinutes} min at the last step's pace` };
      progress(`skipping ${result.skipped.steps.join(', ')}: ${result.skipped.reason}`);
      return;
    }
    const t0 = performance.now();
    const reply =
      i === 0
        ? await server.call('POST', '/v1/pools', { name: POOL, image: 'default', size: { max: children }, memory: opts.memory, disks: { disposable: DISPOSABLE } })
        : await server.call('PATCH', `/v1/pools/${POOL}`, { max: children });
    await taskDone(server, accepted(reply, `pool ${POOL} to ${children}`), `pool ${POOL} to ${children} children`);
    const wallMs = performance.now() - t0;
    result.steps.push(await measureStep(server, root, opts, children, wallMs, memBefore, progress));
    last = { children, fromChildren: i === 0 ? 0 : (opts.steps[i - 1] ?? 0), wallMs, measureMs: performance.now() - t0 - wallMs };
  }
  // the pool's removal is left to the bench's cleanup (by pid): a 100-child removal is not what is measured here
}
