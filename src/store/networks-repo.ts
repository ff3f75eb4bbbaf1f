import { VmforkError } from '../errors.js';
import type { Db } from './db.js';
import { isUniqueViolation, withWriteLock } from './db.js';
import type { LeaseRow, NetworkRow, NewLease, NewNetwork } from './schema.js';
import type { Actor } from '../state/index.js';
import { ownerColumns } from './transition.js';

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

/** Inserts a network record owned by the actor; the primary key makes two concurrent `network create NAME` race-free. */
export async function insertNetwork(db: Db, row: Omit<NewNetwork, 'owner_pid' | 'owner_start_time' | 'owner_op' | 'owner_boot'>, actor: Actor): Promise<void> {
  try {
    await db
      .insertInto('networks')
      .values({ ...row, ...ownerColumns('networks', row.state, actor) })
      .execute();
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    const what = /networks\.netns/.test((err as Error).message) ? `namespace "${row.netns}" is already used by another network` : `a network named "${row.name}" already exists`;
    throw new VmforkError('VMFORK_NETWORK_EXISTS', what, { cause: err, details: { network: row.name } });
  }
}

/** VNIs start above the small numbers other tools tend to pick by hand. */
const FIRST_VNI = 4096;
const MAX_VNI = 0xffffff;

/**
 * The network's VXLAN identifier, drawn on first use: the lowest above every one in use, under the store's write
 * lock (so two hosts' agents drawing at once agree), the unique index being the last word.
 */
export async function networkVni(db: Db, name: string): Promise<number> {
  const row = await requireNetwork(db, name);
  if (row.vni !== null) return row.vni;
  return withWriteLock(db, async (conn) => {
    const again = await requireNetwork(conn, name);
    if (again.vni !== null) return again.vni;
    const top = await conn.selectFrom('networks').select((eb) => eb.fn.max('vni').as('top')).executeTakeFirst();
    const vni = Math.max(FIRST_VNI - 1, Number(top?.top ?? 0)) + 1;
    if (vni > MAX_VNI) throw new VmforkError('VMFORK_NETWORK_EXHAUSTED', `no VXLAN identifier left for network "${name}"`, { details: { network: name } });
    await conn.updateTable('networks').set({ vni }).where('name', '=', name).where('vni', 'is', null).execute();
    return vni;
  });
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
