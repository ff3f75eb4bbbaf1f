import { VmforkError } from '../errors.js';
import { actorFor, ownerAlive } from '../host/index.js';
import { listReplicaViews, removeReplicaAndTemplates, type ReplicaView } from '../replica/index.js';
import { deletePoolRow, getPool, insertPool, listPoolRows, LOCAL_HOST_ID, poolVms, requirePool, requireVm, transition, updatePool, type PoolRow } from '../store/index.js';
import { destroyVm, type VmDeps } from '../vm/index.js';
import { checkPoolFits } from './capacity.js';
import { convergePool, poolSpecOf } from './converge.js';
import { powerOff, powerOn } from './power.js';
import { parsePoolSpec } from './spec.js';
import type { PoolDetail, PoolSummary } from './views.js';
import { startTask } from '../task/index.js';
import type { TaskContext, TaskRunners } from '../task/index.js';

/** Task kinds of the provisioning engine: a server registers these runners to resume tasks after a crash. */
export const POOL_TASKS = ['pool-create', 'pool-resize', 'pool-remove', 'vm-power-on', 'vm-power-off'] as const;

function summary(row: PoolRow, counts: Record<string, number>): PoolSummary {
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
  };
}

async function countsOf(deps: VmDeps, pool: string): Promise<{ counts: Record<string, number>; vms: { name: string; state: string }[] }> {
  const vms = (await poolVms(deps.db, pool)).map((v) => ({ name: v.name, state: v.state }));
  const counts: Record<string, number> = {};
  for (const v of vms) counts[v.state] = (counts[v.state] ?? 0) + 1;
  return { counts, vms };
}

/** Refuses work on a pool another live task holds (a dead one's is resumed by the next server start). */
async function assertIdle(row: PoolRow): Promise<void> {
  if ((row.state === 'provisioning' || row.state === 'deleting') && (await ownerAlive({ pid: row.owner_pid, startTime: row.owner_start_time }))) {
    throw new VmforkError('VMFORK_POOL_STATE', `pool ${row.name} is ${row.state} (task ${row.task_id ?? '?'}); wait for it (vmfork task watch ${row.task_id ?? 'ID'})`, {
      details: { pool: row.name, state: row.state, taskId: row.task_id },
    });
  }
}

/**
 * The provisioning engine behind the API (it implements src/api's ProvisionService): every long operation becomes a
 * task whose runner is idempotent, so the same runner finishes it when a restarted server resumes it.
 */
export function createProvisionService(deps: VmDeps) {
  const run = (kind: (typeof POOL_TASKS)[number], target: string, input: Record<string, unknown> = {}): Promise<string> =>
    startTask(deps, { kind, target, input }, runners[kind] as (ctx: TaskContext) => Promise<Record<string, unknown> | void>);

  const removeRunner = async (ctx: TaskContext): Promise<Record<string, unknown>> => {
    const actor = await actorFor('pool');
    const row = await getPool(deps.db, ctx.target);
    if (!row) return { removed: [] };
    if (row.state !== 'deleting') await transition(deps.db, 'pools', row.name, row.state, 'deleting', actor, { task_id: ctx.id });
    const removed: string[] = [];
    await ctx.step('children', 10);
    for (const vm of await poolVms(deps.db, row.name)) {
      await destroyVm(deps, vm.name);
      removed.push(vm.name);
      await ctx.child(vm.name, { state: 'removed', percent: 100 });
    }
    await deletePoolRow(deps.db, row.name);
    await ctx.step('removed', 100);
    return { pool: row.name, removed, replicaKept: row.replica_id };
  };

  /** After a power operation, an on-demand pool tops its spares up (forking registered children). */
  const topUp = async (vm: string, ctx: TaskContext): Promise<void> => {
    const pool = (await requireVm(deps.db, vm).catch(() => undefined))?.pool_name ?? ctx.input.pool;
    if (typeof pool !== 'string') return;
    const row = await getPool(deps.db, pool);
    if (row && row.state === 'ready') await convergePool(deps, pool, ctx);
  };

  const runners = {
    'pool-create': (ctx: TaskContext) => convergePool(deps, ctx.target, ctx) as unknown as Promise<Record<string, unknown>>,
    'pool-resize': (ctx: TaskContext) => convergePool(deps, ctx.target, ctx) as unknown as Promise<Record<string, unknown>>,
    'pool-remove': removeRunner,
    'vm-power-on': async (ctx: TaskContext) => {
      await ctx.step('power on', 10);
      const r = await powerOn(deps, ctx.target);
      await ctx.child(ctx.target, { state: r.state, percent: 100 });
      await topUp(ctx.target, ctx);
      return { ...r };
    },
    'vm-power-off': async (ctx: TaskContext) => {
      await ctx.step('power off', 10);
      const pool = (await requireVm(deps.db, ctx.target)).pool_name;
      const r = await powerOff(deps, ctx.target);
      await ctx.child(ctx.target, { state: r.state, percent: 100 });
      // a refreshed (non-persistent) child is registered again by its pool
      if (pool && r.action === 'refreshed') await convergePool(deps, pool, ctx);
      return { ...r };
    },
  } satisfies TaskRunners;

  return {
    runners: runners as TaskRunners,

    /** Validates the spec (the one place: shape, cross-field checks, what it names, capacity), then starts the task. */
    async createPool(input: unknown): Promise<{ taskId: string; pool: string }> {
      const spec = parsePoolSpec(input);
      if (await getPool(deps.db, spec.name)) throw new VmforkError('VMFORK_POOL_EXISTS', `a pool named "${spec.name}" already exists`, { details: { pool: spec.name } });
      await checkPoolFits(deps.db, spec);
      const now = new Date().toISOString();
      await insertPool(
        deps.db,
        { name: spec.name, host_id: LOCAL_HOST_ID, state: 'provisioning', spec_json: JSON.stringify(spec), replica_id: null, template_name: null, task_id: null, last_error: null, created_at: now, updated_at: now },
        await actorFor('pool'),
      );
      const taskId = await run('pool-create', spec.name, { pool: spec.name });
      await updatePool(deps.db, spec.name, { task_id: taskId });
      return { taskId, pool: spec.name };
    },

    async listPools(): Promise<PoolSummary[]> {
      return Promise.all((await listPoolRows(deps.db)).map(async (r) => summary(r, (await countsOf(deps, r.name)).counts)));
    },

    async getPool(name: string): Promise<PoolDetail> {
      const row = await requirePool(deps.db, name);
      const { counts, vms } = await countsOf(deps, name);
      return { ...summary(row, counts), spec: poolSpecOf(row), vms, replica: row.replica_id, lastTaskId: row.task_id };
    },

    async resizePool(name: string, request: { max: number }): Promise<{ taskId: string }> {
      const row = await requirePool(deps.db, name);
      await assertIdle(row);
      if (row.state === 'deleting') throw new VmforkError('VMFORK_POOL_STATE', `pool ${name} is being deleted`, { details: { pool: name } });
      const spec = poolSpecOf(row);
      // the new size goes through the same checks as a new spec (names enough for max, min ≤ max, …)
      const resized = parsePoolSpec({ ...spec, size: { ...spec.size, max: request.max } });
      await updatePool(deps.db, name, { spec_json: JSON.stringify(resized) });
      const taskId = await run('pool-resize', name, { pool: name, max: request.max });
      await updatePool(deps.db, name, { task_id: taskId });
      return { taskId };
    },

    async removePool(name: string): Promise<{ taskId: string }> {
      const row = await requirePool(deps.db, name);
      await assertIdle(row);
      await transition(deps.db, 'pools', name, row.state, 'deleting', await actorFor('pool'));
      const taskId = await run('pool-remove', name, { pool: name });
      await updatePool(deps.db, name, { task_id: taskId });
      return { taskId };
    },

    async powerOn(vm: string): Promise<{ taskId: string }> {
      const row = await requireVm(deps.db, vm);
      return { taskId: await run('vm-power-on', vm, { pool: row.pool_name }) };
    },

    async powerOff(vm: string): Promise<{ taskId: string }> {
      const row = await requireVm(deps.db, vm);
      return { taskId: await run('vm-power-off', vm, { pool: row.pool_name }) };
    },

    removeReplica: (id: string): Promise<{ id: string; templates: string[] }> => removeReplicaAndTemplates(deps, id),

    listReplicas: (): Promise<ReplicaView[]> => listReplicaViews(deps.db),
  };
}
