import { VmforkError, type ErrorCode } from '../errors.js';
import { getPool, getReplica, getTemplate, poolVms } from '../store/index.js';
import { templateRecordOf } from '../template/index.js';
import { verifyChildren } from '../verify/index.js';
import type { VmDeps } from '../vm/index.js';
import type { ConvergeResult } from './pool-converge.js';
import { parsePoolSpec, type PoolSpec } from './pool-spec.js';
import { followTask, getTaskView } from './task-follow.js';

/** The main job's pool (`npm start`): 5 persistent desktops with user-data and disposable disks, no hooks. */
export function demoPoolSpec(image = 'default'): PoolSpec {
  return parsePoolSpec({
    name: 'demo',
    image,
    provisioning: 'up-front',
    persistent: true,
    size: { max: 5 },
    naming: { pattern: 'demo-{n}' },
    disks: { userData: '256M', disposable: '256M', swap: '64M' },
  });
}

interface Provision {
  createPool(spec: PoolSpec): Promise<{ taskId: string }>;
  removePool(name: string): Promise<{ taskId: string }>;
}

export interface DemoPoolReport {
  rows: { name: string; ip: string | null; mac: string | null; state: string; reboots: number | string; secondsToReady: number | null }[];
  phase1: { seconds: number; reboots: number; copySeconds: number } | null;
  template: { bootSeconds: number; cutMs: number; accel: string } | null;
  fork: { children: number; seconds: number } | null;
  collisions: number;
  problems: number;
  ok: boolean;
}

/**
 * Makes the demo pool (reused when it is already ready; one that is not is removed and made again), following its
 * task as plain lines, then reads every desktop back from the guests (`verify`): address, MAC, reboots (0 when its
 * boot_id is its replica template's) — with the seconds each took to be ready and the phase-1, replica and fork
 * times.
 */
export async function runDemoPool(deps: VmDeps, provision: Provision, spec: PoolSpec, say: (line: string) => void): Promise<DemoPoolReport> {
  const follow = async (taskId: string): Promise<Awaited<ReturnType<typeof getTaskView>>> => {
    await followTask(deps, taskId, (e) => {
      if (e.kind !== 'child') say(`  ${e.kind}: ${e.message}`);
    });
    return getTaskView(deps, taskId);
  };
  let result: ConvergeResult | undefined;
  const existing = await getPool(deps.db, spec.name);
  if (existing && existing.state !== 'ready') {
    say(`pool ${spec.name} is ${existing.state}: removing it to make it again`);
    await follow((await provision.removePool(spec.name)).taskId);
  }
  if (!existing || existing.state !== 'ready') {
    say(`creating pool ${spec.name}: ${spec.size.max} persistent desktops (phase 1 once on an internal clone, a replica, then forks)…`);
    const task = await follow((await provision.createPool(spec)).taskId);
    if (task.state !== 'succeeded') {
      throw new VmforkError((task.lastError?.code as ErrorCode | undefined) ?? 'VMFORK_FORK_FAILED', `pool ${spec.name}: ${task.state}: ${task.lastError?.message ?? ''}`);
    }
    result = task.result as unknown as ConvergeResult;
  } else {
    say(`pool ${spec.name} is ready (made by an earlier run)`);
  }
  const pool = await getPool(deps.db, spec.name);
  const vms = await poolVms(deps.db, spec.name);
  const report = await verifyChildren(deps, { names: vms.map((v) => v.name) });
  const facts = new Map(report.children.map((c) => [c.name, c]));
  const replica = pool?.replica_id ? await getReplica(deps.db, pool.replica_id) : undefined;
  const p1 = replica?.phase1_json ? (JSON.parse(replica.phase1_json) as { reboots: number; ms: { total: number }; copyMs: number }) : undefined;
  const template = pool?.template_name ? await getTemplate(deps.db, pool.template_name) : undefined;
  const record = template ? templateRecordOf(template) : null;
  return {
    rows: vms.map((v) => ({
      name: v.name,
      ip: facts.get(v.name)?.ipv4 ?? null,
      mac: facts.get(v.name)?.mac ?? null,
      state: v.state,
      reboots: facts.get(v.name)?.reboots ?? 'unknown',
      secondsToReady: result?.readyMs[v.name] !== undefined ? (result.readyMs[v.name] as number) / 1000 : null,
    })),
    phase1: p1 ? { seconds: p1.ms.total / 1000, reboots: p1.reboots, copySeconds: p1.copyMs / 1000 } : null,
    template: record ? { bootSeconds: record.coldBootSeconds, cutMs: record.cutMs, accel: record.accel } : null,
    fork: result ? { children: result.forked.length, seconds: result.ms.children / 1000 } : null,
    collisions: report.collisions.length,
    problems: report.problems.length,
    ok: report.ok,
  };
}
