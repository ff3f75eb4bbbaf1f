import { VmforkError, type ErrorCode } from '../errors.js';
import { parsePoolSpec, type ConvergeResult, type createProvisionService, type PoolSpec } from '../pool/index.js';
import { followTask, getTaskView } from '../task/index.js';
import { showTemplate } from '../template/index.js';
import { verifyChildren } from '../verify/index.js';
import type { VmDeps } from '../vm/index.js';

/** The demo pool's name: its console page is `/pools/demo`, which `serve --demo` prints. */
export const DEMO_POOL = 'demo';

/** The main job's pool (`npm start`): 5 persistent desktops with user-data and disposable disks, no hooks. */
export function demoPoolSpec(image = 'default'): PoolSpec {
  return parsePoolSpec({
    name: DEMO_POOL,
    image,
    provisioning: 'up-front',
    persistent: true,
    size: { max: 5 },
    naming: { pattern: 'demo-{n}' },
    disks: { userData: '256M', disposable: '256M', swap: '64M' },
  });
}

/** The provisioning service calls the demo makes (src/pool's createProvisionService has them). */
type Provision = Pick<ReturnType<typeof createProvisionService>, 'createPool' | 'resizePool' | 'getPool' | 'listReplicas'>;

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
 * Makes the demo pool (reused when it is already ready; one that is not — a run interrupted, a child failed — is
 * converged again, never removed: persistent desktops keep their /home), following its task as plain lines, then
 * reads every desktop back from the guests (`verify`): address, MAC, reboots (0 when its boot_id is its replica
 * template's) — with the seconds each took to be ready and the phase-1, replica and fork times.
 */
export async function runDemoPool(deps: VmDeps, provision: Provision, spec: PoolSpec, say: (line: string) => void): Promise<DemoPoolReport> {
  const follow = async (taskId: string): Promise<ConvergeResult> => {
    await followTask(deps, taskId, (e) => {
      if (e.kind !== 'child') say(`  ${e.kind}: ${e.message}`);
    });
    const task = await getTaskView(deps, taskId);
    if (task.state !== 'succeeded') {
      throw new VmforkError((task.lastError?.code as ErrorCode | undefined) ?? 'VMFORK_FORK_FAILED', `pool ${spec.name}: ${task.state}: ${task.lastError?.message ?? ''}`);
    }
    return task.result as unknown as ConvergeResult;
  };
  let result: ConvergeResult | undefined;
  const existing = await provision.getPool(spec.name).catch(() => undefined);
  if (!existing) {
    say(`creating pool ${spec.name}: ${spec.size.max} persistent desktops (phase 1 once on an internal clone, a replica, then forks)…`);
    result = await follow((await provision.createPool(spec)).taskId);
  } else if (existing.state !== 'ready') {
    say(`pool ${spec.name} is ${existing.state}: converging it on its spec (its desktops and their /home are kept)`);
    result = await follow((await provision.resizePool(spec.name, { max: existing.size.max })).taskId);
  } else {
    say(`pool ${spec.name} is ready (made by an earlier run)`);
  }
  const pool = await provision.getPool(spec.name);
  const report = await verifyChildren(deps, { names: pool.vms.map((v) => v.name) });
  const facts = new Map(report.children.map((c) => [c.name, c]));
  const replica = (await provision.listReplicas()).find((r) => r.id === pool.replica);
  const template = replica?.template ? await showTemplate(deps, replica.template) : undefined;
  return {
    rows: pool.vms.map((v) => ({
      name: v.name,
      ip: facts.get(v.name)?.ipv4 ?? null,
      mac: facts.get(v.name)?.mac ?? null,
      state: v.state,
      reboots: facts.get(v.name)?.reboots ?? 'unknown',
      secondsToReady: result?.readyMs[v.name] !== undefined ? (result.readyMs[v.name] as number) / 1000 : null,
    })),
    phase1: replica?.phase1 ? { seconds: replica.phase1.seconds, reboots: replica.phase1.reboots, copySeconds: replica.phase1.copySeconds } : null,
    template: template ? { bootSeconds: template.coldBootSeconds as number, cutMs: template.cutMs as number, accel: String(template.accel) } : null,
    fork: result ? { children: result.forked.length, seconds: result.ms.children / 1000 } : null,
    collisions: report.collisions.length,
    problems: report.problems.length,
    ok: report.ok,
  };
}
