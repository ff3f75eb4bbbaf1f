import { VmforkError } from '../errors.js';
import { actorFor } from '../host/index.js';
import { listReplicaViews, removeReplicaAndTemplates, type ReplicaView } from '../replica/index.js';
import { getPool, getTemplate, insertPool, listHostRows, listLeases, listPoolRows, liveQueueTasks, LOCAL_HOST_ID, poolVms, putPoolReservation, requirePool, requireVm, setPoolReservationTask, updatePool, withWriteLock, type Db, type PoolRow, type VmRow } from '../store/index.js';
import { cancelTask, enqueueTask, vmLock, type Enqueued, type TaskRunners } from '../task/index.js';
import { templateRecordOf } from '../template/index.js';
import { createClaimService } from './claim-service.js';
import { pushOf } from './push.js';
import { createPushService } from './push-service.js';
import type { VmDeps } from '../vm/index.js';
import { checkPoolCapacity, checkPoolFits } from './capacity.js';
import { createCheckpointService } from './checkpoint-service.js';
import { createPromoteService } from './promote-service.js';
import { poolSpecOf } from './converge.js';
import { REAL_PARTS, type PoolParts } from './parts.js';
import { POOL_TASKS, poolRunners, type PoolTaskKind } from './runners.js';
import { parsePoolSpec } from './spec.js';
import { lastPoolTask } from './last-task.js';
import type { PoolChild, PoolDetail, PoolSummary, PoolTask } from './views.js';

export { POOL_TASKS };

function summary(row: PoolRow, counts: Record<string, number>, lastTask: PoolTask | null): PoolSummary {
  const spec = poolSpecOf(row);
  return {
    name: row.name,
    state: row.state,
    image: spec.image,
    provisioning: spec.provisioning,
    persistent: spec.persistent,
    size: spec.size,
    hostId: row.host_id,
    datastore: spec.datastore,
    counts,
    createdAt: row.created_at,
    replica: row.replica_id,
    lastTask,
  };
}

function countsOf(vms: readonly VmRow[]): { counts: Record<string, number>; hosts: Record<string, number> } {
  const counts: Record<string, number> = {};
  const hosts: Record<string, number> = {};
  for (const v of vms) {
    counts[v.state] = (counts[v.state] ?? 0) + 1;
    hosts[v.host_id] = (hosts[v.host_id] ?? 0) + 1;
  }
  return { counts, hosts };
}

/**
 * Reboots on a child's way to ready, from its fork's own identity report (facts_json): 0 when the guest's boot_id at
 * ready was its template's — it resumed, it never booted; null when either boot_id is unknown (a child made before
 * the report recorded it, a template without a record). A differing boot_id counts as null too: it proves a boot but
 * not how many. Reboots after ready are not watched (verify reads the guest's boot_id now).
 */
function rebootsOf(v: VmRow, templateBootIds: ReadonlyMap<string, string | null>): number | null {
  const bootId = v.facts_json ? (JSON.parse(v.facts_json) as { bootId?: string }).bootId?.toLowerCase() : undefined;
  const templateBootId = v.template_name ? templateBootIds.get(v.template_name) : undefined;
  return bootId && templateBootId && bootId === templateBootId ? 0 : null;
}

async function templateBootIds(db: Db, names: Iterable<string>): Promise<Map<string, string | null>> {
  const ids = new Map<string, string | null>();
  for (const name of names) {
    const row = await getTemplate(db, name);
    ids.set(name, (row ? templateRecordOf(row)?.bootId?.toLowerCase() : undefined) ?? null);
  }
  return ids;
}

/** A child as the pool's detail lists it; `ip` from its lease. */
function childView(v: VmRow, ip: string | undefined, bootIds: ReadonlyMap<string, string | null>): PoolChild {
  return {
    name: v.name,
    state: v.state,
    host: v.host_id,
    ip: ip ?? null,
    claimedBy: v.claimed_by,
    claimedAt: v.claimed_at,
    secondsToReady: v.ready_ms === null ? null : v.ready_ms / 1000,
    reboots: rebootsOf(v, bootIds),
    createdAt: v.forked_at ?? v.created_at,
  };
}

/**
 * The provisioning engine behind the API (it implements src/api's ProvisionService): every long operation becomes a
 * task whose runner is idempotent, so the same runner finishes it when a restarted server resumes it. `parts` is
 * the QEMU work (the real one unless a test scripts it).
 */
export function createProvisionService(deps: VmDeps, parts: PoolParts = REAL_PARTS) {
  // every pool operation runs in its pool's queue: alone (`pool` lock) or beside power operations on other VMs
  const run = (kind: PoolTaskKind, target: string, queue: string | null, input: Record<string, unknown>, lock?: string): Promise<Enqueued> =>
    enqueueTask(deps, { kind, target, input, ...(queue ? { queue, ...(lock ? { lock } : {}) } : {}) }, runners[kind]);
  const runners = poolRunners(deps, (pool, why) => run('pool-converge', pool, pool, { pool, why }), parts);
  const checkpoints = createCheckpointService(deps);
  const promotion = createPromoteService(deps);

  /** A removal queued or running makes every other request on the pool pointless: it is refused. */
  const assertNotRemoving = async (name: string): Promise<void> => {
    const rm = (await liveQueueTasks(deps.db, name)).find((t) => t.kind === 'pool-remove');
    if (rm) throw new VmforkError('VMFORK_POOL_STATE', `pool ${name} is being removed (task ${rm.id})`, { details: { pool: name, taskId: rm.id } });
  };

  /** A power operation runs in its pool's queue under the VM's own lock; a VM outside any pool queues on itself. */
  const power = async (kind: 'vm-power-on' | 'vm-power-off', vm: string): Promise<Enqueued> => {
    const row = await requireVm(deps.db, vm);
    if (row.pool_name) await assertNotRemoving(row.pool_name);
    if (kind === 'vm-power-on' && row.pool_name && row.state !== 'running') {
      // the same capacity check as a create: a registered child is forked, a powered-off one boots from its disks
      const spec = poolSpecOf(await requirePool(deps.db, row.pool_name));
      await checkPoolCapacity(deps.db, spec, row.state === 'registered' ? { fork: 1, reserve: 0, field: 'vm' } : { fork: 0, reserve: 0, boot: 1, field: 'vm' });
    }
    return run(kind, vm, row.pool_name ?? `vm:${vm}`, { pool: row.pool_name }, vmLock(vm));
  };

  const claims = createClaimService(deps, run, assertNotRemoving, parts);
  const pushes = createPushService(deps, run, assertNotRemoving);

  return {
    runners: { ...runners, ...checkpoints.runners, ...promotion.runners } as TaskRunners,
    ...claims,
    ...pushes,

    /**
     * Validates the spec (the one place: shape, cross-field checks, what it names, host bounds, capacity), then
     * starts the task. The checks and the pool's insert are one write transaction: the pool row is the reservation
     * (every later check counts it), so of two creates that together do not fit the second is refused.
     */
    async createPool(input: unknown): Promise<Enqueued & { pool: string }> {
      const spec = parsePoolSpec(input);
      const actor = await actorFor('pool');
      await withWriteLock(deps.db, async (conn) => {
        if (await getPool(conn, spec.name)) throw new VmforkError('VMFORK_POOL_EXISTS', `a pool named "${spec.name}" already exists`, { details: { pool: spec.name } });
        await checkPoolFits(conn, spec);
        const now = new Date().toISOString();
        await insertPool(
          conn,
          { name: spec.name, host_id: LOCAL_HOST_ID, state: 'provisioning', spec_json: JSON.stringify(spec), replica_id: null, template_name: null, task_id: null, last_error: null, created_at: now, updated_at: now },
          actor,
        );
      });
      const task = await run('pool-create', spec.name, spec.name, { pool: spec.name });
      await updatePool(deps.db, spec.name, { task_id: task.taskId });
      return { ...task, pool: spec.name };
    },

    /**
     * Placed pools rebuild a lost host's children on the others (docs/placement.md): a converge is queued for each
     * pool with a child on a lost host that none has replaced yet, unless one is already waiting in its queue.
     */
    async rebuildLostCapacity(): Promise<string[]> {
      const lostHosts = new Set((await listHostRows(deps.db)).filter((h) => h.state === 'lost').map((h) => h.id));
      if (!lostHosts.size) return [];
      const queued: string[] = [];
      for (const row of await listPoolRows(deps.db)) {
        if (!poolSpecOf(row).placement || row.state === 'deleting') continue;
        const vms = await poolVms(deps.db, row.name);
        if (!vms.some((v) => v.replaced_by === null && v.state === 'unknown' && lostHosts.has(v.host_id))) continue;
        if ((await liveQueueTasks(deps.db, row.name)).some((t) => t.state === 'queued' && (t.kind === 'pool-converge' || t.kind === 'pool-remove'))) continue;
        await run('pool-converge', row.name, row.name, { pool: row.name, why: 'host lost' });
        queued.push(row.name);
      }
      return queued;
    },

    async listPools(): Promise<PoolSummary[]> {
      return Promise.all((await listPoolRows(deps.db)).map(async (r) => summary(r, countsOf(await poolVms(deps.db, r.name)).counts, await lastPoolTask(deps.db, r.name))));
    },

    async getPool(name: string): Promise<PoolDetail> {
      const row = await requirePool(deps.db, name);
      const rows = await poolVms(deps.db, name);
      const { counts, hosts } = countsOf(rows);
      const templates: Record<string, number> = {};
      for (const v of rows) if (v.template_name) templates[v.template_name] = (templates[v.template_name] ?? 0) + 1;
      const members = new Set(rows.map((v) => v.name));
      const spec = poolSpecOf(row);
      const ips = new Map((await listLeases(deps.db, spec.network)).filter((l) => members.has(l.vm_name)).map((l) => [l.vm_name, l.ip]));
      const bootIds = await templateBootIds(deps.db, Object.keys(templates));
      const vms = rows.map((v) => childView(v, ips.get(v.name), bootIds));
      const lastTask = await lastPoolTask(deps.db, name);
      return { ...summary(row, counts, lastTask), spec, vms, hosts, lastTaskId: row.task_id, template: row.template_name, templates, push: pushOf(row) };
    },

    /**
     * Grows or shrinks a pool to `max` children, in its queue. Checked now (a bad size is a 400 at once); applied
     * when its turn comes. Two resizes waiting in the queue are one request: the last wins, the earlier is cancelled.
     */
    async resizePool(name: string, request: { max: number }): Promise<Enqueued & { supersedes: string[] }> {
      const row = await requirePool(deps.db, name);
      await assertNotRemoving(name);
      const spec = poolSpecOf(row);
      // the new size goes through the same checks as a new spec (names enough for max, min ≤ max, …) and capacity
      // the check and the new size's reservation are one transaction: a create checked before the task is queued counts it
      await withWriteLock(deps.db, async (conn) => {
        await checkPoolFits(conn, parsePoolSpec({ ...spec, size: { ...spec.size, max: request.max } }));
        await putPoolReservation(conn, name, request.max);
      });
      const waiting = (await liveQueueTasks(deps.db, name)).filter((t) => t.kind === 'pool-resize' && t.state === 'queued');
      for (const t of waiting) await cancelTask(deps, t.id).catch(() => undefined);
      const task = await run('pool-resize', name, name, { pool: name, max: request.max });
      await setPoolReservationTask(deps.db, name, task.taskId);
      await updatePool(deps.db, name, { task_id: task.taskId });
      return { ...task, supersedes: waiting.map((t) => t.id) };
    },

    /**
     * Removes a pool, in its queue: operations queued or running on it are cancelled first (the user wants the pool
     * gone; a running create stops at its next step and rolls back its half-made child). A second removal answers
     * with the first one's task.
     */
    async removePool(name: string): Promise<Enqueued> {
      await requirePool(deps.db, name);
      const live = await liveQueueTasks(deps.db, name);
      const rm = live.find((t) => t.kind === 'pool-remove');
      if (rm) return { taskId: rm.id, state: rm.state === 'queued' ? 'queued' : 'running', queuedBehind: rm.queued_behind };
      for (const t of live) await cancelTask(deps, t.id).catch(() => undefined);
      const task = await run('pool-remove', name, name, { pool: name });
      await updatePool(deps.db, name, { task_id: task.taskId });
      return task;
    },

    powerOn: (vm: string): Promise<Enqueued> => power('vm-power-on', vm),

    powerOff: (vm: string): Promise<Enqueued> => power('vm-power-off', vm),

    checkpointVm: checkpoints.checkpointVm,

    revertVm: checkpoints.revertVm,

    listCheckpoints: checkpoints.listCheckpoints,

    promoteVm: promotion.promoteVm,

    removeReplica: (id: string): Promise<{ id: string; templates: string[] }> => removeReplicaAndTemplates(deps, id),

    listReplicas: (): Promise<ReplicaView[]> => listReplicaViews(deps.db),
  };
}
