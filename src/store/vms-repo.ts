import { VmforkError } from '../errors.js';
import type { Db } from './db.js';
import type { NewVm, VmRow, VmUpdate } from './schema.js';

export async function getVm(db: Db, name: string): Promise<VmRow | undefined> {
  return db.selectFrom('vms').selectAll().where('name', '=', name).executeTakeFirst();
}

export async function requireVm(db: Db, name: string): Promise<VmRow> {
  const row = await getVm(db, name);
  if (!row) throw new VmforkError('VMFORK_VM_NOT_FOUND', `no VM named "${name}" (see: vmfork vm list)`, { details: { vm: name } });
  return row;
}

export async function listVms(db: Db, filter: { role?: string } = {}): Promise<VmRow[]> {
  let q = db.selectFrom('vms').selectAll();
  if (filter.role) q = q.where('role', '=', filter.role);
  return q.orderBy('created_at').orderBy('name').execute();
}

export async function insertVm(db: Db, vm: NewVm): Promise<void> {
  try {
    await db.insertInto('vms').values(vm).execute();
  } catch (err) {
    if (/UNIQUE constraint failed/.test((err as Error).message)) {
      throw new VmforkError('VMFORK_VM_EXISTS', `a VM named "${vm.name}" already exists`, { cause: err, details: { vm: vm.name } });
    }
    throw err;
  }
}

export async function updateVm(db: Db, name: string, update: Omit<VmUpdate, 'name' | 'updated_at'>): Promise<void> {
  await db
    .updateTable('vms')
    .set({ ...update, updated_at: new Date().toISOString() })
    .where('name', '=', name)
    .execute();
}

export async function deleteVm(db: Db, name: string): Promise<void> {
  await db.deleteFrom('vms').where('name', '=', name).execute();
}
