import { VmforkError } from '../errors.js';
import type { VmRole, VmState } from '../state/index.js';
import { sql } from 'kysely';
import type { Db } from './db.js';
import type { NewVm, VmRow, VmUpdate } from './schema.js';
import { isUniqueViolation } from './db.js';
import { dialectOf } from './dialect.js';
import type { Actor } from '../state/index.js';
import { ownerColumns } from './transition.js';

export async function getVm(db: Db, name: string): Promise<VmRow | undefined> {
  return db.selectFrom('vms').selectAll().where('name', '=', name).executeTakeFirst();
}

export async function requireVm(db: Db, name: string): Promise<VmRow> {
  const row = await getVm(db, name);
  if (!row) throw new VmforkError('VMFORK_VM_NOT_FOUND', `no VM named "${name}" (see: vmfork vm list)`, { details: { vm: name } });
  return row;
}

/** A host's VMs in any of `states`, by name. */
export async function vmsOnHost(db: Db, hostId: string, states: readonly VmState[]): Promise<VmRow[]> {
  if (states.length === 0) return [];
  return db.selectFrom('vms').selectAll().where('host_id', '=', hostId).where('state', 'in', [...states]).orderBy('name').execute();
}

export async function listVms(db: Db, filter: { role?: VmRole; template?: string } = {}): Promise<VmRow[]> {
  let q = db.selectFrom('vms').selectAll();
  if (filter.role) q = q.where('role', '=', filter.role);
  if (filter.template) q = q.where('template_name', '=', filter.template);
  return q.orderBy('created_at').orderBy('name').execute();
}

/** Every VM name in the store (children's names are planned against it). */
export async function vmNames(db: Db): Promise<Set<string>> {
  return new Set((await db.selectFrom('vms').select('name').execute()).map((r) => r.name));
}

/** Children (VM rows) forked from the template, by name; its warm processes (role `warm`) are not children. */
export async function templateChildren(db: Db, template: string): Promise<string[]> {
  const rows = await db.selectFrom('vms').select('name').where('template_name', '=', template).where('role', '!=', 'warm').orderBy('name').execute();
  return rows.map((r) => r.name);
}

/** The template's warm processes (role `warm`, any state), oldest first: the order forks take them in. */
export async function templateWarmVms(db: Db, template: string): Promise<VmRow[]> {
  return db.selectFrom('vms').selectAll().where('template_name', '=', template).where('role', '=', 'warm').orderBy('created_at').orderBy('name').execute();
}

/**
 * Renames a warm process's record to the child that takes it, with its process rows and leases — only while it is
 * still `warm` (false when another fork took it first). Run inside the fork's write transaction (`withWriteLock`):
 * the processes' foreign key is checked at its commit, when every row names the new VM.
 */
export async function renameWarmVm(conn: Db, from: string, to: string): Promise<boolean> {
  // SQLite defers with a pragma; PostgreSQL defers the processes' key, made DEFERRABLE for this (migration 001)
  if (dialectOf(conn) === 'postgres') await sql`set constraints all deferred`.execute(conn);
  else await sql`pragma defer_foreign_keys = on`.execute(conn);
  const r = await conn.updateTable('vms').set({ name: to }).where('name', '=', from).where('state', '=', 'warm').where('role', '=', 'warm').executeTakeFirst();
  if (Number(r.numUpdatedRows) !== 1) return false;
  await conn.updateTable('processes').set({ vm_name: to }).where('vm_name', '=', from).execute();
  await conn.updateTable('ip_leases').set({ vm_name: to }).where('vm_name', '=', from).execute();
  return true;
}

/**
 * Inserts a VM record; its owner columns follow its state (a VM born `creating` is owned by the actor). The primary
 * key makes the name a reservation: of two processes inserting one name, the second gets VMFORK_VM_EXISTS.
 */
export async function insertVm(db: Db, vm: Omit<NewVm, 'owner_pid' | 'owner_start_time' | 'owner_op' | 'owner_boot'>, actor: Actor): Promise<void> {
  try {
    await db
      .insertInto('vms')
      .values({ ...vm, ...ownerColumns('vms', vm.state, actor) })
      .execute();
  } catch (err) {
    if (isUniqueViolation(err)) {
      throw new VmforkError('VMFORK_VM_EXISTS', `a VM named "${vm.name}" already exists`, { cause: err, details: { vm: vm.name } });
    }
    throw err;
  }
}

/** Updates columns other than the state and its owner (those change only through `transition`). */
export async function updateVm(db: Db, name: string, update: Omit<VmUpdate, 'name' | 'state' | 'updated_at' | 'owner_pid' | 'owner_start_time' | 'owner_op' | 'owner_boot'>): Promise<void> {
  await db
    .updateTable('vms')
    .set({ ...update, updated_at: new Date().toISOString() })
    .where('name', '=', name)
    .execute();
}

/** Fences a placed pool's child on a lost host: `by` replaced it (once: a second converge leaves the first mark). */
export async function markVmReplaced(db: Db, name: string, by: string): Promise<void> {
  await db.updateTable('vms').set({ replaced_by: by }).where('name', '=', name).where('replaced_by', 'is', null).execute();
}

export async function deleteVm(db: Db, name: string): Promise<void> {
  await db.deleteFrom('vms').where('name', '=', name).execute();
}

/** Marks a pool child claimed by a user (powered on for them) or back among the spares. */
export async function setVmClaimed(db: Db, name: string, claimed: boolean): Promise<void> {
  await db
    .updateTable('vms')
    .set({ claimed_at: claimed ? new Date().toISOString() : null, claim_state: claimed ? 'claimed' : 'unclaimed', ...(claimed ? {} : { claimed_by: null, claim_expires_at: null }), updated_at: new Date().toISOString() })
    .where('name', '=', name)
    .execute();
}

/**
 * The uid the VM's QEMU runs as: the one it has, else the lowest free one in [base, base + count) — taken in one
 * statement, and the unique index (migration 014) refuses a uid another VM took meanwhile, so it is retried.
 */
export async function assignQemuUid(db: Db, name: string, base: number, count: number): Promise<number> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const row = await db.selectFrom('vms').select('qemu_uid').where('name', '=', name).executeTakeFirst();
    if (!row) throw new VmforkError('VMFORK_VM_NOT_FOUND', `no VM named "${name}"`, { details: { vm: name } });
    if (row.qemu_uid !== null) return row.qemu_uid;
    try {
      // the casts and the derived table's alias are for PostgreSQL (a parameter has no type of its own there)
      await sql`UPDATE vms SET qemu_uid = (
          SELECT c FROM (SELECT CAST(${base} AS bigint) AS c UNION ALL SELECT qemu_uid + 1 FROM vms WHERE qemu_uid IS NOT NULL) AS free
          WHERE c >= CAST(${base} AS bigint) AND c < CAST(${base + count} AS bigint) AND c NOT IN (SELECT qemu_uid FROM vms WHERE qemu_uid IS NOT NULL)
          ORDER BY c LIMIT 1)
        WHERE name = ${name} AND qemu_uid IS NULL`.execute(db);
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      continue;
    }
    const now = await db.selectFrom('vms').select('qemu_uid').where('name', '=', name).executeTakeFirst();
    if (now?.qemu_uid != null) return now.qemu_uid;
    throw new VmforkError('VMFORK_VM_START_FAILED', `no free QEMU uid left in ${base}…${base + count - 1}: ${count} VMs hold one`, { details: { vm: name, base, count } });
  }
  throw new VmforkError('VMFORK_INTERNAL', `could not assign a QEMU uid to ${name}`, { details: { vm: name } });
}
