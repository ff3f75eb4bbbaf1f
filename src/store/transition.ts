import { VmforkError, type ErrorCode } from '../errors.js';
import {
  imageStateMachine,
  networkStateMachine,
  poolStateMachine,
  replicaStateMachine,
  taskStateMachine,
  templateStateMachine,
  vmStateMachine,
  type Actor,
  type StateMachine,
} from '../state/index.js';
import type { Db } from './db.js';
import type { Database, OwnerColumns, VmUpdate } from './schema.js';

/** Tables whose rows have a state, a transition table and owner columns. */
export type StatefulTable = 'vms' | 'templates' | 'networks' | 'images' | 'tasks' | 'pools' | 'replicas';
export type StateOf<T extends StatefulTable> = Database[T]['state'];

/** `key`: the primary key column (a name for resources, an id for tasks). */
const MACHINES: { [T in StatefulTable]: { machine: StateMachine<StateOf<T>>; notFound: ErrorCode; key: 'name' | 'id' } } = {
  vms: { machine: vmStateMachine, notFound: 'VMFORK_VM_NOT_FOUND', key: 'name' },
  templates: { machine: templateStateMachine, notFound: 'VMFORK_TEMPLATE_NOT_FOUND', key: 'name' },
  networks: { machine: networkStateMachine, notFound: 'VMFORK_NETWORK_NOT_FOUND', key: 'name' },
  images: { machine: imageStateMachine, notFound: 'VMFORK_IMAGE_NOT_FOUND', key: 'name' },
  tasks: { machine: taskStateMachine, notFound: 'VMFORK_TASK_NOT_FOUND', key: 'id' },
  pools: { machine: poolStateMachine, notFound: 'VMFORK_POOL_NOT_FOUND', key: 'name' },
  replicas: { machine: replicaStateMachine, notFound: 'VMFORK_REPLICA_NOT_FOUND', key: 'id' },
};

/** Columns a transition may write besides state and owner (never the key). */
export type ExtraSet<T extends StatefulTable> = Partial<Omit<Database[T], 'name' | 'id' | 'state' | 'updated_at' | keyof OwnerColumns>>;

/** The owner columns of a resting row: nobody is acting on it. */
export const NO_OWNER: Readonly<OwnerColumns> = Object.freeze({ owner_pid: null, owner_start_time: null, owner_op: null, owner_boot: null });

/** Owner columns for a row entering `state`: the actor while the state is transitional, none once it rests. */
export function ownerColumns<T extends StatefulTable>(table: T, state: StateOf<T>, actor: Actor): OwnerColumns {
  return MACHINES[table].machine.isTransitional(state)
    ? { owner_pid: actor.owner.pid, owner_start_time: actor.owner.startTime, owner_op: actor.op, owner_boot: actor.owner.boot }
    : { ...NO_OWNER };
}

/**
 * THE way a state changes. Checks the move against the resource's transition table, then writes it as a
 * compare-and-set on the old state in one statement, so of two processes racing for the same move exactly one
 * wins; the other gets the resource's state error naming the state it found. The owner columns follow the new
 * state (the actor while it is transitional, cleared when it rests).
 */
export async function transition<T extends StatefulTable>(
  db: Db,
  table: T,
  name: string,
  from: StateOf<T>,
  to: StateOf<T>,
  actor: Actor,
  set: ExtraSet<T> = {},
): Promise<void> {
  const { machine, notFound, key } = MACHINES[table];
  machine.assertTransition(from, to, name);
  const values = { ...set, state: to, ...ownerColumns(table, to, actor), updated_at: new Date().toISOString() };
  // the tables share key/state/owner/updated_at; Kysely cannot type an update over a union of tables
  const result = await db
    .updateTable(table as 'vms')
    .set(values as VmUpdate)
    .where(key as 'name', '=', name)
    .where('state', '=', from as StateOf<'vms'>)
    .executeTakeFirst();
  if (Number(result.numUpdatedRows) === 1) return;
  const now = await db.selectFrom(table as 'vms').select(['state', 'owner_pid']).where(key as 'name', '=', name).executeTakeFirst();
  if (!now) throw new VmforkError(notFound, `${machine.resource} ${name} no longer exists`, { details: { name } });
  const by = now.owner_pid ? ` (vmfork pid ${now.owner_pid} is working on it)` : '';
  throw new VmforkError(machine.errorCode, `${machine.resource} ${name} is ${now.state}${by}, no longer ${from}; cannot become ${to}`, {
    details: { resource: machine.resource, name, expected: from, found: now.state, to },
  });
}

/**
 * Takes over a row whose owner died (compare-and-set on the dead owner), so that exactly one of several healing
 * processes finishes or rolls back its work. False when someone else took it first or the row moved on.
 */
export async function takeOver<T extends StatefulTable>(db: Db, table: T, name: string, state: StateOf<T>, dead: OwnerColumns, actor: Actor): Promise<boolean> {
  let q = db
    .updateTable(table as 'vms')
    .set({ owner_pid: actor.owner.pid, owner_start_time: actor.owner.startTime, owner_op: dead.owner_op ?? actor.op, owner_boot: actor.owner.boot, updated_at: new Date().toISOString() })
    .where(MACHINES[table].key as 'name', '=', name)
    .where('state', '=', state as StateOf<'vms'>);
  q = dead.owner_pid === null ? q.where('owner_pid', 'is', null) : q.where('owner_pid', '=', dead.owner_pid);
  q = dead.owner_start_time === null ? q.where('owner_start_time', 'is', null) : q.where('owner_start_time', '=', dead.owner_start_time);
  q = dead.owner_boot === null ? q.where('owner_boot', 'is', null) : q.where('owner_boot', '=', dead.owner_boot);
  const result = await q.executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** `name` is the row's key: a resource's name, a task's id. */
export type TransitionalRow<T extends StatefulTable> = { name: string; state: StateOf<T> } & OwnerColumns;

/** Rows of `table` in one of the machine's transitional states: the candidates for healing. */
export async function transitionalRows<T extends StatefulTable>(db: Db, table: T): Promise<TransitionalRow<T>[]> {
  const { machine, key } = MACHINES[table];
  const states = machine.transitional as StateOf<'vms'>[];
  return (await db
    .selectFrom(table as 'vms')
    .select([`${key as 'name'} as name`, 'state', 'owner_pid', 'owner_start_time', 'owner_op', 'owner_boot'])
    .where('state', 'in', states)
    .orderBy(key as 'name')
    .execute()) as TransitionalRow<T>[];
}
