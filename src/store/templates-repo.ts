import { VmforkError } from '../errors.js';
import type { Db } from './db.js';
import { isUniqueViolation } from './db.js';
import type { NewTemplate, TemplateRow, TemplatesTable } from './schema.js';
import type { Actor } from '../state/index.js';
import { ownerColumns } from './transition.js';

export async function getTemplate(db: Db, name: string): Promise<TemplateRow | undefined> {
  return db.selectFrom('templates').selectAll().where('name', '=', name).executeTakeFirst();
}

export async function requireTemplate(db: Db, name: string): Promise<TemplateRow> {
  const row = await getTemplate(db, name);
  if (!row) throw new VmforkError('VMFORK_TEMPLATE_NOT_FOUND', `no template named "${name}" (see: vmfork template list)`, { details: { template: name } });
  return row;
}

export async function listTemplates(db: Db): Promise<TemplateRow[]> {
  return db.selectFrom('templates').selectAll().orderBy('name').execute();
}

/** Inserts a template record owned by the actor; the primary key makes two concurrent creates of one name safe. */
export async function insertTemplate(db: Db, row: Omit<NewTemplate, 'owner_pid' | 'owner_start_time' | 'owner_op' | 'owner_boot'>, actor: Actor): Promise<void> {
  try {
    await db
      .insertInto('templates')
      .values({ ...row, ...ownerColumns('templates', row.state, actor) })
      .execute();
  } catch (err) {
    if (isUniqueViolation(err)) {
      throw new VmforkError('VMFORK_TEMPLATE_EXISTS', `a template named "${row.name}" already exists`, { cause: err, details: { template: row.name } });
    }
    throw err;
  }
}

/** Updates columns other than the state and its owner (those change only through `transition`). */
export async function updateTemplate(db: Db, name: string, update: Partial<Pick<TemplatesTable, 'spec_json' | 'record_json' | 'last_error'>>): Promise<void> {
  await db.updateTable('templates').set({ ...update, updated_at: new Date().toISOString() }).where('name', '=', name).execute();
}

export async function deleteTemplateRow(db: Db, name: string): Promise<void> {
  await db.deleteFrom('templates').where('name', '=', name).execute();
}

/** Links a template to the replica its disks overlay (a pool's template). */
export async function setTemplateReplica(db: Db, name: string, replicaId: string): Promise<void> {
  await db.updateTable('templates').set({ replica_id: replicaId, updated_at: new Date().toISOString() }).where('name', '=', name).execute();
}

/** The templates made from a replica's disks. */
export async function replicaTemplates(db: Db, replicaId: string): Promise<TemplateRow[]> {
  return db.selectFrom('templates').selectAll().where('replica_id', '=', replicaId).orderBy('name').execute();
}

/** The templates standing on `name` (made from one of its children, their disks overlaying its disks). */
export async function templatesOn(db: Db, name: string): Promise<string[]> {
  const rows = await db.selectFrom('templates').select('name').where('parent_name', '=', name).orderBy('name').execute();
  return rows.map((r) => r.name);
}
