import { sql } from 'kysely';
import { VmforkError } from '../errors.js';
import type { Db } from './db.js';
import type { LeaseRow, NetworkRow, NetworksTable, NewLease, NewNetwork } from './schema.js';

export async function getNetwork(db: Db, name: string): Promise<NetworkRow | undefined> {
  return db.selectFrom('networks').selectAll().where('name', '=', name).executeTakeFirst();
}

/** Like getNetwork, but an unknown name is VMFORK_NETWORK_NOT_FOUND. */
export async function requireNetwork(db: Db, name: string): Promise<NetworkRow> {
  const row = await getNetwork(db, name);
  if (!row) {
    throw new VmforkError('VMFORK_NETWORK_NOT_FOUND', `no network named "${name}" (see: vmfork network list)`, { details: { network: name } });
  }
  return row;
}

export async function listNetworkRows(db: Db): Promise<NetworkRow[]> {
  return db.selectFrom('networks').selectAll().orderBy('name').execute();
}

export function isUniqueViolation(err: unknown): boolean {
  return err instanceof Error && /UNIQUE constraint failed/.test(err.message);
}

/** Inserts a network record; the primary key makes two concurrent `network create NAME` race-free. */
export async function insertNetwork(db: Db, row: NewNetwork): Promise<void> {
  try {
    await db.insertInto('networks').values(row).execute();
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    const what = /networks\.netns/.test((err as Error).message) ? `namespace "${row.netns}" is already used by another network` : `a network named "${row.name}" already exists`;
    throw new VmforkError('VMFORK_NETWORK_EXISTS', what, { cause: err, details: { network: row.name } });
  }
}

export async function setNetworkState(db: Db, name: string, state: NetworksTable['state']): Promise<void> {
  await db.updateTable('networks').set({ state }).where('name', '=', name).execute();
}

/** Deletes the record; the leases' foreign key makes this fail while any lease remains. */
export async function deleteNetworkRow(db: Db, name: string): Promise<void> {
  await db.deleteFrom('networks').where('name', '=', name).execute();
}

export async function listLeases(db: Db, network?: string): Promise<LeaseRow[]> {
  let q = db.selectFrom('ip_leases').selectAll();
  if (network !== undefined) q = q.where('network_name', '=', network);
  return q.orderBy('network_name').orderBy('id').execute();
}

export async function getLease(db: Db, network: string, vmName: string): Promise<LeaseRow | undefined> {
  return db.selectFrom('ip_leases').selectAll().where('network_name', '=', network).where('vm_name', '=', vmName).executeTakeFirst();
}

export async function findLeaseByMac(db: Db, mac: string): Promise<LeaseRow | undefined> {
  return db.selectFrom('ip_leases').selectAll().where('mac', '=', mac).executeTakeFirst();
}

export async function countLeases(db: Db): Promise<Map<string, number>> {
  const rows = await db
    .selectFrom('ip_leases')
    .select((eb) => ['network_name', eb.fn.countAll<number>().as('n')])
    .groupBy('network_name')
    .execute();
  return new Map(rows.map((r) => [r.network_name, Number(r.n)]));
}

export async function insertLease(db: Db, lease: NewLease): Promise<LeaseRow> {
  return db.insertInto('ip_leases').values(lease).returningAll().executeTakeFirstOrThrow();
}

/** Removes a VM's lease; returns the removed row (undefined when there was none, so release is idempotent). */
export async function deleteLease(db: Db, network: string, vmName: string): Promise<LeaseRow | undefined> {
  return db.deleteFrom('ip_leases').where('network_name', '=', network).where('vm_name', '=', vmName).returningAll().executeTakeFirst();
}

/**
 * Runs `fn` in a `BEGIN IMMEDIATE` transaction on one reserved connection. IMMEDIATE takes SQLite's write lock up
 * front, so a read-then-insert (pick the lowest free address, insert it) cannot interleave with another process
 * doing the same; waiting for the lock is bounded by the store's busy_timeout. A plain (deferred) BEGIN would
 * instead fail with SQLITE_BUSY when two readers both try to upgrade to writers.
 */
export async function withWriteLock<T>(db: Db, fn: (conn: Db) => Promise<T>): Promise<T> {
  return db.connection().execute(async (conn) => {
    await sql`begin immediate`.execute(conn);
    try {
      const result = await fn(conn);
      await sql`commit`.execute(conn);
      return result;
    } catch (err) {
      await sql`rollback`.execute(conn);
      throw err;
    }
  });
}
