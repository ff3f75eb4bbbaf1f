import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { VmforkError } from '../src/errors.js';
import { registerLocalHost } from '../src/host/index.js';
import { createProvisionService, parsePoolSpec, type PoolSpec } from '../src/pool/index.js';
import { poolVms } from '../src/store/index.js';
import { waitForTask, type TaskView } from '../src/task/index.js';
import { describe, roundStats, run, type Stats } from '../src/util/index.js';
import { SUSPEND_LABEL } from '../src/vm/index.js';
import { createBenchHome, runInHome } from './bench-home.js';
import { readLoadAvg, readMachineFacts, type LoadAvg, type MachineFacts } from './machine-facts.js';

type Progress = (message: string) => void;
type Service = ReturnType<typeof createProvisionService>;

const HOOKS = resolve(import.meta.dirname, '..', '..', 'test', 'fixtures', 'hooks');
const CLI = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');

export interface LifecycleBenchOptions {
  /** Claim → release rounds on the spare pool (each: a claim of a spare, a release refreshing it). */
  rounds: number;
  /** Children of the pool the image push runs on. */
  pushCount: number;
  memory: string;
  outDir: string;
}

export interface LifecycleBenchResult {
  benchmark: 'lifecycle';
  version: 1;
  startedAt: string;
  finishedAt: string;
  options: LifecycleBenchOptions;
  machine: MachineFacts;
  load: { start: LoadAvg; end?: LoadAvg };
  /** Claim of a running spare, in the provisioning service (what the API handler awaits), ms. */
  claimSpareMs?: Stats | null;
  /** Claim that forks a registered child (no warm process: pools do not keep them yet), to ready, ms. */
  claimForkMs?: Stats | null;
  /** Claim that resumes a warm child (size.warm), to ready, ms (the refill between two claims is waited for). */
  claimWarmMs?: Stats | null;
  /** A persistent child: power-off (suspend), power-on (resume), and power-on with no state (a cold boot from its disks), task runs in ms. */
  suspend?: { suspendMs: Stats | null; resumeMs: Stats | null; bootMs: Stats | null; ratio: number | null };
  /** Checkpoint with memory and revert to it of a running child, the tasks' runs in ms. */
  checkpoint?: { checkpointMs: Stats | null; revertMs: Stats | null };
  /** Promotion of a running child to a full clone (its disks mirrored while it runs). */
  promote?: { ms: number; mibPerSecond: number | null; secondsPerGiB: number | null };
  /** Release → refreshed (re-forked, phase 2 again) → ready, the release task's run, ms. */
  releaseToReadyMs?: Stats | null;
  /** An image push (phase 1 of the new spec, new replica, every child refreshed) with min-ready held. */
  push?: { count: number; minReady: number; wallMs: number; lowestReadySampled: number; samples: number; replaced: number };
  error?: string;
}

function spec(name: string, over: Record<string, unknown>, memory: string): PoolSpec {
  return parsePoolSpec({
    name,
    image: 'bench',
    persistent: false,
    naming: { pattern: `${name}-{n:2}` },
    disks: { disposable: '128M', swap: '32M' },
    customize: { perChild: [{ path: '/usr/local/lib/vmfork/per-child/10-record.sh', args: { domain: 'corp.example' }, timeoutSeconds: 60 }], machinePassword: true },
    memory,
    ...over,
  });
}

async function succeeded(h: Parameters<typeof waitForTask>[0], taskId: string, what: string): Promise<TaskView> {
  const t = await waitForTask(h, taskId);
  if (t.state !== 'succeeded') throw new VmforkError('VMFORK_FORK_FAILED', `${what}: ${t.state}: ${t.lastError?.message ?? ''}`);
  return t;
}

const ms = (t: TaskView): number => Date.parse(t.updatedAt) - Date.parse(t.createdAt);

export async function runLifecycleBench(opts: LifecycleBenchOptions, progress: Progress): Promise<LifecycleBenchResult> {
  const startedAt = new Date().toISOString();
  const load: LifecycleBenchResult['load'] = { start: await readLoadAvg() };
  const h = await createBenchHome();
  const result: Omit<LifecycleBenchResult, 'finishedAt'> = { benchmark: 'lifecycle', version: 1, startedAt, options: opts, machine: await readMachineFacts(tmpdir()), load };
  await runInHome(h, result, progress, async () => {
    await run(process.execPath, [CLI, '--home', h.root, 'image', 'build', '--name', 'bench', '--hooks', HOOKS], { timeoutMs: 3_600_000 });
    await registerLocalHost(h);
    const provision: Service = createProvisionService(h);
    progress('pool "lc": 2 children up front (phase 1, replica, template, forks)');
    await succeeded(h, (await provision.createPool(spec('lc', { size: { max: 2 } }, opts.memory))).taskId, 'pool lc');
    const claimMs: number[] = [];
    const releaseMs: number[] = [];
    for (let i = 0; i < opts.rounds; i++) {
      const c = await provision.claim('lc', { user: `u${i}` });
      if (c.how !== 'spare') throw new VmforkError('VMFORK_FORK_FAILED', `round ${i}: the claim forked (no spare)`);
      claimMs.push(c.tookMs);
      const released = await succeeded(h, (await provision.releaseVm(c.vm)).taskId, `release of ${c.vm}`);
      releaseMs.push(ms(released));
      progress(`round ${i + 1}/${opts.rounds}: claim ${c.tookMs} ms, release → ready ${ms(released)} ms`);
    }
    result.claimSpareMs = roundStats(describe(claimMs), 1) ?? null;
    result.releaseToReadyMs = roundStats(describe(releaseMs), 0) ?? null;

    const [first, second] = await poolVms(h.db, 'lc');
    if (!first || !second) throw new VmforkError('VMFORK_FORK_FAILED', 'pool lc has fewer than 2 children');
    const cps: number[] = [];
    const revs: number[] = [];
    for (let i = 0; i < 3; i++) {
      const cp = await succeeded(h, (await provision.checkpointVm(first.name, { label: `b${i}`, memory: true })).taskId, 'checkpoint');
      const rev = await succeeded(h, (await provision.revertVm(first.name, { to: `b${i}` })).taskId, 'revert');
      cps.push(ms(cp));
      revs.push(ms(rev));
      progress(`checkpoint ${ms(cp)} ms, revert ${ms(rev)} ms`);
    }
    result.checkpoint = { checkpointMs: roundStats(describe(cps), 0) ?? null, revertMs: roundStats(describe(revs), 0) ?? null };
    const promoted = await succeeded(h, (await provision.promoteVm(second.name, {})).taskId, 'promote');
    const pr = promoted.result as { mibPerSecond?: number; secondsPerGiB?: number } | null;
    result.promote = { ms: ms(promoted), mibPerSecond: pr?.mibPerSecond ?? null, secondsPerGiB: pr?.secondsPerGiB ?? null };
    progress(`promote: ${ms(promoted)} ms, ${pr?.secondsPerGiB ?? '?'} s/GiB`);
    await succeeded(h, (await provision.removePool('lc')).taskId, 'pool lc rm');

    progress(`pool "od": on demand, ${opts.rounds} registered children; each claim forks one`);
    await succeeded(h, (await provision.createPool(spec('od', { provisioning: 'on-demand', size: { max: opts.rounds, min: 0, spares: 0 } }, opts.memory))).taskId, 'pool od');
    const forkMs: number[] = [];
    for (let i = 0; i < opts.rounds; i++) {
      const c = await provision.claim('od', {});
      if (c.how !== 'forked') throw new VmforkError('VMFORK_FORK_FAILED', `claim ${i} of od did not fork`);
      forkMs.push(c.tookMs);
      progress(`claim ${i + 1}/${opts.rounds} (fork): ${c.tookMs} ms`);
    }
    result.claimForkMs = roundStats(describe(forkMs), 0) ?? null;
    await succeeded(h, (await provision.removePool('od')).taskId, 'pool od rm');

    progress(`pool "ow": on demand with size.warm 1; each claim resumes a warm child, the refill waited for between claims`);
    await succeeded(h, (await provision.createPool(spec('ow', { provisioning: 'on-demand', size: { max: opts.rounds, min: 0, spares: 0, warm: 1 } }, opts.memory))).taskId, 'pool ow');
    const warmMs: number[] = [];
    for (let i = 0; i < opts.rounds; i++) {
      const c = await provision.claim('ow', {});
      if (c.how !== 'warm') throw new VmforkError('VMFORK_FORK_FAILED', `claim ${i} of ow did not take a warm child (${c.how})`);
      warmMs.push(c.tookMs);
      if (c.followUp) await succeeded(h, c.followUp, 'warm refill');
      progress(`claim ${i + 1}/${opts.rounds} (warm): ${c.tookMs} ms`);
    }
    result.claimWarmMs = roundStats(describe(warmMs), 0) ?? null;
    await succeeded(h, (await provision.removePool('ow')).taskId, 'pool ow rm');

    progress('pool "ps": one persistent child; suspend, resume, and a power-on with no state (a boot from its disks)');
    await succeeded(h, (await provision.createPool(spec('ps', { persistent: true, size: { max: 1 }, disks: { userData: '128M', disposable: '128M', swap: '32M' } }, opts.memory))).taskId, 'pool ps');
    const [ps] = await poolVms(h.db, 'ps');
    if (!ps) throw new VmforkError('VMFORK_FORK_FAILED', 'pool ps has no child');
    const sus: number[] = [];
    const res: number[] = [];
    const boot: number[] = [];
    for (let i = 0; i < Math.min(opts.rounds, 3); i++) {
      const off = await succeeded(h, (await provision.powerOff(ps.name)).taskId, 'suspend');
      sus.push(ms(off));
      const on = await succeeded(h, (await provision.powerOn(ps.name)).taskId, 'resume');
      if (on.result?.action !== 'resumed') throw new VmforkError('VMFORK_FORK_FAILED', `power-on ${String(on.result?.action)}: ${String(on.result?.resumeError)}`);
      res.push(ms(on));
      await succeeded(h, (await provision.powerOff(ps.name)).taskId, 'suspend');
      // no state: the power-on boots the same child from its disks, the baseline a resume is measured against
      await rm(join(ps.dir, 'checkpoints', SUSPEND_LABEL), { recursive: true, force: true });
      const cold = await succeeded(h, (await provision.powerOn(ps.name)).taskId, 'boot');
      boot.push(ms(cold));
      progress(`round ${i + 1}: suspend ${ms(off)} ms, resume ${ms(on)} ms, boot from disks ${ms(cold)} ms`);
    }
    const resumeStats = roundStats(describe(res), 0) ?? null;
    const bootStats = roundStats(describe(boot), 0) ?? null;
    result.suspend = { suspendMs: roundStats(describe(sus), 0) ?? null, resumeMs: resumeStats, bootMs: bootStats, ratio: resumeStats && bootStats ? Math.round((bootStats.p50 / resumeStats.p50) * 10) / 10 : null };
    await succeeded(h, (await provision.removePool('ps')).taskId, 'pool ps rm');

    progress(`pool "up": ${opts.pushCount} children, then an image push (phase 1 again: a new replica) with min-ready ${opts.pushCount - 1}`);
    await succeeded(h, (await provision.createPool(spec('up', { size: { max: opts.pushCount } }, opts.memory))).taskId, 'pool up');
    const minReady = opts.pushCount - 1;
    const samples: number[] = [];
    let sampling = true;
    // ready children sampled every 200 ms for the whole push (a sampler, not a test: no assertion on a clock)
    const sampler = (async () => {
      while (sampling) {
        samples.push((await poolVms(h.db, 'up')).filter((v) => v.state === 'running').length);
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const t0 = performance.now();
    const pushed = await succeeded(h, (await provision.updatePool('up', spec('up', { size: { max: opts.pushCount }, disks: { disposable: '160M', swap: '32M' } }, opts.memory), { minReady })).taskId, 'push');
    const wallMs = Math.round(performance.now() - t0);
    sampling = false;
    await sampler;
    const rec = (pushed.result as { push?: { replaced?: string[] } }).push;
    result.push = { count: opts.pushCount, minReady, wallMs, lowestReadySampled: Math.min(...samples), samples: samples.length, replaced: rec?.replaced?.length ?? 0 };
    progress(`push: ${wallMs} ms, lowest ready sampled ${Math.min(...samples)} of ${opts.pushCount} (${samples.length} samples)`);
    await succeeded(h, (await provision.removePool('up')).taskId, 'pool up rm');
  });
  return { ...result, finishedAt: new Date().toISOString(), load: { ...load, end: await readLoadAvg() } };
}

const fmt = (s: Stats | null | undefined, unit = 'ms'): string => (s ? `${s.p50} ${unit} p50 (min ${s.min}, max ${s.max}, n ${s.n})` : '-');

export function renderLifecycleMarkdown(r: LifecycleBenchResult): string {
  const rows = [
    ['claim of a spare (service; goal ≤ 50 ms p50 at the API)', fmt(r.claimSpareMs)],
    ['claim that forks a registered child, to ready (goal ≤ 1.2 s p50 from a warm process)', fmt(r.claimForkMs)],
    ['claim that resumes a warm child, to ready (goal ≤ 1.2 s p50)', fmt(r.claimWarmMs)],
    ['release → refreshed → ready (goal ≤ 3 s p50)', fmt(r.releaseToReadyMs)],
    ['persistent child: suspend (power-off)', fmt(r.suspend?.suspendMs)],
    ['persistent child: resume (power-on) vs boot from its disks (goal: resume ≥ 10× faster)', r.suspend ? `resume ${fmt(r.suspend.resumeMs)}; boot ${fmt(r.suspend.bootMs)}; ${r.suspend.ratio ?? '-'}×` : '-'],
    ['checkpoint with memory / revert to it', r.checkpoint ? `${fmt(r.checkpoint.checkpointMs)} / ${fmt(r.checkpoint.revertMs)}` : '-'],
    ['promote to a full clone', r.promote ? `${r.promote.ms} ms, ${r.promote.mibPerSecond ?? '-'} MiB/s, ${r.promote.secondsPerGiB ?? '-'} s per GiB` : '-'],
    ['image push', r.push ? `${r.push.count} children, ${r.push.replaced} refreshed, ${(r.push.wallMs / 1000).toFixed(1)} s; lowest ready sampled ${r.push.lowestReadySampled} (min-ready ${r.push.minReady}, ${r.push.samples} samples every 200 ms)` : '-'],
  ];
  return [
    `# lifecycle benchmark, ${r.startedAt.slice(0, 10)}`,
    '',
    `${r.machine.nproc} CPU(s), accel ${r.machine.accel} (${r.machine.accelReason}), QEMU ${r.machine.qemuVersion}, revision ${r.machine.revision}; load ${r.load.start.one} at start, ${r.load.end?.one ?? '?'} at end; guest RAM ${r.options.memory}.`,
    '',
    '| figure | measured |',
    '|---|---|',
    ...rows.map(([a, b]) => `| ${a} | ${b} |`),
    '',
    ...(r.error ? ['**failed:**', '', '```', r.error, '```', ''] : []),
  ].join('\n');
}
