import type { ClaimState, TaskState, VmRole, VmState } from '../state/index.js';
import type { Db } from './db.js';
import type { PoolReservationRow } from './schema.js';

/**
 * What `GET /metrics` reads at each scrape (src/metrics/): counts grouped in SQL, so a scrape costs a few queries
 * however many VMs and tasks the store holds, and rows that ended since a mark. Read-only.
 */

/** VMs counted per pool (null: outside any pool), role, state and claim state. */
export interface VmCount {
  pool: string | null;
  role: VmRole;
  state: VmState;
  claim: ClaimState;
  n: number;
}

export async function countVms(db: Db): Promise<VmCount[]> {
  const rows = await db
    .selectFrom('vms')
    .select((eb) => ['pool_name', 'role', 'state', 'claim_state', eb.fn.countAll<number>().as('n')])
    .groupBy(['pool_name', 'role', 'state', 'claim_state'])
    .execute();
  return rows.map((r) => ({ pool: r.pool_name, role: r.role, state: r.state, claim: r.claim_state, n: Number(r.n) }));
}

/** Tasks counted per kind and state. */
export async function countTasks(db: Db): Promise<{ kind: string; state: TaskState; n: number }[]> {
  const rows = await db
    .selectFrom('tasks')
    .select((eb) => ['kind', 'state', eb.fn.countAll<number>().as('n')])
    .groupBy(['kind', 'state'])
    .execute();
  return rows.map((r) => ({ kind: r.kind, state: r.state, n: Number(r.n) }));
}

/** Tasks in a final state whose row last changed at or after `since` (an ISO instant), oldest first. */
export async function tasksEndedSince(db: Db, since: string): Promise<{ id: string; kind: string; target: string; state: TaskState; created_at: string; updated_at: string; result_json: string | null }[]> {
  return db
    .selectFrom('tasks')
    .select(['id', 'kind', 'target', 'state', 'created_at', 'updated_at', 'result_json'])
    .where('state', 'in', ['succeeded', 'failed', 'cancelled'])
    .where('updated_at', '>=', since)
    .orderBy('updated_at')
    .execute();
}

/**
 * VMs whose last fork made them ready at or after `since` (an ISO instant), oldest first: every fork writes both
 * columns when its child turns running (a converge, a claim, a refresh; any host).
 */
export async function vmsForkedSince(db: Db, since: string): Promise<{ name: string; pool_name: string | null; forked_at: string; ready_ms: number }[]> {
  const rows = await db
    .selectFrom('vms')
    .select(['name', 'pool_name', 'forked_at', 'ready_ms'])
    .where('forked_at', '>=', since)
    .where('ready_ms', 'is not', null)
    .orderBy('forked_at')
    .execute();
  return rows.map((r) => ({ name: r.name, pool_name: r.pool_name, forked_at: r.forked_at ?? since, ready_ms: Number(r.ready_ms) }));
}

/** Ready replicas whose row last changed at or after `since`, oldest first. */
export async function replicasReadySince(db: Db, since: string): Promise<{ id: string; host_id: string; phase1_json: string | null; updated_at: string }[]> {
  return db.selectFrom('replicas').select(['id', 'host_id', 'phase1_json', 'updated_at']).where('state', '=', 'ready').where('updated_at', '>=', since).orderBy('updated_at').execute();
}

/** Every pool's pending resize reservation. */
export async function listPoolReservations(db: Db): Promise<PoolReservationRow[]> {
  return db.selectFrom('pool_reservations').selectAll().orderBy('pool').execute();
}

/** QEMU processes recorded as not exited, with their VM's host. */
export async function liveProcesses(db: Db): Promise<{ vm: string; host: string; pid: number; start_time: number }[]> {
  const rows = await db
    .selectFrom('processes')
    .innerJoin('vms', 'vms.name', 'processes.vm_name')
    .select(['processes.vm_name as vm', 'vms.host_id as host', 'processes.pid', 'processes.start_time'])
    .where('processes.exited_at', 'is', null)
    .orderBy('processes.vm_name')
    .execute();
  return rows.map((r) => ({ vm: r.vm, host: r.host, pid: Number(r.pid), start_time: Number(r.start_time) }));
}
