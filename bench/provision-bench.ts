import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { runPhase1 } from '../src/customize/index.js';
import { VmforkError } from '../src/errors.js';
import { applyIdentity, newMachineId } from '../src/identity/index.js';
import { randomLocalMac } from '../src/network/index.js';
import { createProvisionService, parsePoolSpec, type PoolSpec } from '../src/pool/index.js';
import { diskLayoutOf } from '../src/replica/index.js';
import { poolCustomizer } from '../src/customize/index.js';
import { registerLocalHost } from '../src/host/index.js';
import { waitForTask } from '../src/task/index.js';
import { GuestAgentClient } from '../src/qemu/index.js';
import { run, describe, roundStats } from '../src/util/index.js';
import { destroyVm, vmPaths } from '../src/vm/index.js';
import { createBenchHome, runInHome, type BenchHome } from './bench-home.js';
import { readLoadAvg, readMachineFacts } from './machine-facts.js';
import type { ProvisionBenchOptions, ProvisionBenchResult, TraditionalVm } from './provision-result.js';

type Progress = (message: string) => void;

// dist/bench/ → the repo's test hooks: a common script that asks for one reboot, a per-child script with args and
// the machine password — the same phase 1 and phase 2 on both paths
const HOOKS = resolve(import.meta.dirname, '..', '..', 'test', 'fixtures', 'hooks');
const CLI = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');

function benchSpec(name: string, count: number, memory: string): PoolSpec {
  return parsePoolSpec({
    name,
    image: 'bench',
    persistent: true,
    size: { max: count },
    naming: { pattern: `${name}-{n:2}` },
    disks: { userData: '128M', disposable: '128M', swap: '32M' },
    customize: {
      common: [{ path: '/usr/local/lib/vmfork/common/10-reboot-once.sh', timeoutSeconds: 300 }],
      perChild: [{ path: '/usr/local/lib/vmfork/per-child/10-record.sh', args: { domain: 'corp.example' }, timeoutSeconds: 60 }],
      machinePassword: true,
    },
    memory,
  });
}

/**
 * The traditional path for one desktop: a linked clone of the image, a cold boot, the SAME phase 1 with its reboot,
 * then phase 2 (identity + the per-child hook with its machine password) — then it is ready. Removed afterwards.
 */
async function traditionalVm(h: BenchHome, spec: PoolSpec, name: string, progress: Progress): Promise<TraditionalVm> {
  const t0 = performance.now();
  const p1 = await runPhase1(h, { clone: name, image: spec.image, ...(spec.memory ? { memory: spec.memory } : {}), layout: diskLayoutOf(spec), common: spec.customize.common, keepRunning: true }, { step: () => undefined, event: () => undefined });
  const agent = await GuestAgentClient.connect(vmPaths(h.home.vms, name).agent, { timeoutMs: 5_000 });
  try {
    await applyIdentity(agent, { hostname: name, mac: randomLocalMac(), machineId: newMachineId() });
    await poolCustomizer(spec)?.(agent, { name, ip: '', mac: '' });
  } finally {
    agent.close();
  }
  const readyMs = Math.round(performance.now() - t0);
  await destroyVm(h, name);
  progress(`traditional ${name}: ready after ${(readyMs / 1000).toFixed(1)} s (${p1.reboots} reboot(s))`);
  return { name, readyMs, reboots: p1.reboots };
}

/** N traditional desktops, `concurrency` at a time (the host's cores), as a fleet would be customized without forks. */
async function traditionalFleet(h: BenchHome, spec: PoolSpec, count: number, concurrency: number, progress: Progress): Promise<{ wallMs: number; vms: TraditionalVm[] }> {
  const t0 = performance.now();
  const names = Array.from({ length: count }, (_, i) => `tr-${String(i + 1).padStart(2, '0')}`);
  const vms: TraditionalVm[] = [];
  const worker = async (): Promise<void> => {
    for (let n = names.shift(); n !== undefined; n = names.shift()) vms.push(await traditionalVm(h, spec, n, progress));
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { wallMs: Math.round(performance.now() - t0), vms };
}

export async function runProvisionBench(opts: ProvisionBenchOptions, progress: Progress): Promise<ProvisionBenchResult> {
  const startedAt = new Date().toISOString();
  const load = { start: await readLoadAvg() };
  const machine = await readMachineFacts(tmpdir());
  const h = await createBenchHome();
  const result: Omit<ProvisionBenchResult, 'finishedAt' | 'load'> = { benchmark: 'provision', version: 1, startedAt, options: opts, machine };
  await runInHome(h, result, progress, async () => {
    progress(`data dir ${h.root}; image "bench" = default + test hooks (built into the image cache when missing)`);
    await run(process.execPath, [CLI, '--home', h.root, 'image', 'build', '--name', 'bench', '--hooks', HOOKS], { timeoutMs: 3_600_000 });
    await registerLocalHost(h);
    const spec = benchSpec('vf', opts.count, opts.memory);
    const provision = createProvisionService(h);
    progress(`vmfork path: pool of ${opts.count} (phase 1 once + replica + template + forks)`);
    const t0 = performance.now();
    const created = await waitForTask(h, (await provision.createPool(spec)).taskId);
    if (created.state !== 'succeeded') throw new VmforkError('VMFORK_FORK_FAILED', `pool create ${created.state}: ${created.lastError?.message ?? ''}`);
    const poolMs = Math.round(performance.now() - t0);
    const converge = created.result as { ms: { replica: number; template: number; children: number }; readyMs: Record<string, number>; phase1Reboots: number };
    progress(`vmfork path: ${opts.count} ready in ${(poolMs / 1000).toFixed(1)} s`);
    const t1 = performance.now();
    const grown = await waitForTask(h, (await provision.resizePool('vf', { max: opts.count + 1 })).taskId);
    if (grown.state !== 'succeeded') throw new VmforkError('VMFORK_FORK_FAILED', `pool resize ${grown.state}: ${grown.lastError?.message ?? ''}`);
    const additionalMs = Math.round(performance.now() - t1);
    progress(`vmfork path: one more desktop (resize) in ${additionalMs} ms`);
    await waitForTask(h, (await provision.removePool('vf')).taskId);
    result.vmfork = {
      poolMs,
      steps: converge.ms,
      phase1Reboots: converge.phase1Reboots,
      readyMs: roundStats(describe(Object.values(converge.readyMs)), 0) ?? null,
      additionalMs,
    };
    progress(`traditional path: ${opts.count} desktops, ${opts.concurrency} at a time`);
    const fleet = await traditionalFleet(h, spec, opts.count, opts.concurrency, progress);
    // one more desktop alone: what a fleet pays for each desktop it adds
    const one = await traditionalVm(h, spec, 'tr-extra', progress);
    result.traditional = { poolMs: fleet.wallMs, readyMs: roundStats(describe(fleet.vms.map((v) => v.readyMs)), 0) ?? null, reboots: fleet.vms.map((v) => v.reboots), additionalMs: one.readyMs };
    result.ratios = { pool: round1(fleet.wallMs / poolMs), additional: round1(one.readyMs / additionalMs) };
  });
  return { ...result, finishedAt: new Date().toISOString(), load: { ...load, end: await readLoadAvg() } };
}

const round1 = (x: number): number => Math.round(x * 10) / 10;
