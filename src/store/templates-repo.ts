import { VmforkError } from '../errors.js';
import type { Db } from './db.js';
import type { NewTemplate, TemplateRow, TemplatesTable } from './schema.js';

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

export async function insertTemplate(db: Db, row: NewTemplate): Promise<void> {
  try {
    await db.insertInto('templates').values(row).execute();
  } catch (err) {
    if (/UNIQUE constraint failed/.test((err as Error).message)) {
      throw new VmforkError('VMFORK_TEMPLATE_EXISTS', `a template named "${row.name}" already exists`, { cause: err, details: { template: row.name } });
    }
    throw err;
  }
}

export async function updateTemplate(db: Db, name: string, update: Partial<Omit<TemplatesTable, 'name' | 'updated_at'>>): Promise<void> {
  await db.updateTable('templates').set({ ...update, updated_at: new Date().toISOString() }).where('name', '=', name).execute();
}

export async function deleteTemplateRow(db: Db, name: string): Promise<void> {
  await db.deleteFrom('templates').where('name', '=', name).execute();
}

/** Children (VM rows) forked from the template. */
export async function templateChildren(db: Db, name: string): Promise<string[]> {
  const rows = await db.selectFrom('vms').select('name').where('template_name', '=', name).orderBy('name').execute();
  return rows.map((r) => r.name);
}
