import { VmforkError } from '../errors.js';
import type { Actor } from '../state/index.js';
import type { Db } from './db.js';
import { isUniqueViolation } from './db.js';
import type { PoolRow, PoolsTable, ReplicaRow, ReplicasTable, VmRow } from './schema.js';
import { ownerColumns } from './transition.js';

type Owned = 'owner_pid' | 'owner_start_time' | 'owner_op' | 'owner_boot';

export async function getPool(db: Db, name: string): Promise<PoolRow | undefined> {
  return db.selectFrom('pools').selectAll().where('name', '=', name).executeTakeFirst();
}

export async function requirePool(db: Db, name: string): Promise<PoolRow> {
  const row = await getPool(db, name);
  if (!row) throw new VmforkError('VMFORK_POOL_NOT_FOUND', `no pool named "${name}" (see: vmfork pool list)`, { details: { pool: name } });
  return row;
}

export async function listPoolRows(db: Db): Promise<PoolRow[]> {
  return db.selectFrom('pools').selectAll().orderBy('name').execute();
}

/** Inserts a pool owned by the actor while it is provisioning; its name is the reservation (VMFORK_POOL_EXISTS). */
export async function insertPool(db: Db, row: Omit<PoolsTable, Owned | 'push_json'> & { push_json?: string | null }, actor: Actor): Promise<void> {
  try {
    await db
      .insertInto('pools')
      .values({ ...row, ...ownerColumns('pools', row.state, actor) })
      .execute();
  } catch (err) {
    if (isUniqueViolation(err)) throw new VmforkError('VMFORK_POOL_EXISTS', `a pool named "${row.name}" already exists`, { cause: err, details: { pool: row.name } });
    throw err;
  }
}

/** Updates a pool's columns other than its state and owner (those change only through `transition`). */
export async function updatePool(db: Db, name: string, update: Partial<Pick<PoolsTable, 'spec_json' | 'replica_id' | 'template_name' | 'task_id' | 'last_error' | 'push_json'>>): Promise<void> {
  await db.updateTable('pools').set({ ...update, updated_at: new Date().toISOString() }).where('name', '=', name).execute();
}

export async function deletePoolRow(db: Db, name: string): Promise<void> {
  await db.deleteFrom('pools').where('name', '=', name).execute();
}

/** The pool's children, by name. */
export async function poolVms(db: Db, pool: string): Promise<VmRow[]> {
  return db.selectFrom('vms').selectAll().where('pool_name', '=', pool).orderBy('name').execute();
}

export async function getReplica(db: Db, id: string): Promise<ReplicaRow | undefined> {
  return db.selectFrom('replicas').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function requireReplica(db: Db, id: string): Promise<ReplicaRow> {
  const row = await getReplica(db, id);
  if (!row) throw new VmforkError('VMFORK_REPLICA_NOT_FOUND', `no replica "${id}" (see: vmfork replica list)`, { details: { replica: id } });
  return row;
}

/** The replica map: the replica made from this image version and phase-1 digest on this host's datastore. */
export async function findReplica(db: Db, key: Pick<ReplicaRow, 'image_version' | 'phase1_digest' | 'host_id' | 'datastore'>): Promise<ReplicaRow | undefined> {
  return db
    .selectFrom('replicas')
    .selectAll()
    .where('image_version', '=', key.image_version)
    .where('phase1_digest', '=', key.phase1_digest)
    .where('host_id', '=', key.host_id)
    .where('datastore', '=', key.datastore)
    .executeTakeFirst();
}

export async function listReplicaRows(db: Db): Promise<ReplicaRow[]> {
  return db.selectFrom('replicas').selectAll().orderBy('created_at').execute();
}

/** Inserts a replica (owned while `creating`); the map's unique key makes two creators of one replica race-free. */
export async function insertReplica(db: Db, row: Omit<ReplicasTable, Owned>, actor: Actor): Promise<boolean> {
  try {
    await db
      .insertInto('replicas')
      .values({ ...row, ...ownerColumns('replicas', row.state, actor) })
      .execute();
    return true;
  } catch (err) {
    if (isUniqueViolation(err)) return false;
    throw err;
  }
}

export async function updateReplica(db: Db, id: string, update: Partial<Pick<ReplicasTable, 'disks_json' | 'phase1_json' | 'last_error'>>): Promise<void> {
  await db.updateTable('replicas').set({ ...update, updated_at: new Date().toISOString() }).where('id', '=', id).execute();
}

export async function deleteReplicaRow(db: Db, id: string): Promise<void> {
  await db.deleteFrom('replicas').where('id', '=', id).execute();
}

/** Pools whose children fork from the replica: while any exists, the replica is protected. */
export async function replicaPools(db: Db, id: string): Promise<string[]> {
  return (await db.selectFrom('pools').select('name').where('replica_id', '=', id).orderBy('name').execute()).map((r) => r.name);
}
