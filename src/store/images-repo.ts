import { VmforkError } from '../errors.js';
import type { Db } from './db.js';
import type { ImageRow, NewImage } from './schema.js';

export async function getImage(db: Db, name: string): Promise<ImageRow | undefined> {
  return db.selectFrom('images').selectAll().where('name', '=', name).executeTakeFirst();
}

/** Like getImage, but an unknown name is VMFORK_IMAGE_NOT_FOUND. */
export async function requireImage(db: Db, name: string): Promise<ImageRow> {
  const row = await getImage(db, name);
  if (!row) throw new VmforkError('VMFORK_IMAGE_NOT_FOUND', `no image named "${name}" (see: vmfork image list)`, { details: { image: name } });
  return row;
}

export async function listImages(db: Db): Promise<ImageRow[]> {
  return db.selectFrom('images').selectAll().orderBy('name').execute();
}

/** Inserts or replaces the record of an image (a rebuild with a new recipe replaces the old record). */
export async function upsertImage(db: Db, image: NewImage): Promise<void> {
  await db
    .insertInto('images')
    .values(image)
    .onConflict((oc) => oc.column('name').doUpdateSet(image))
    .execute();
}

export async function deleteImage(db: Db, name: string): Promise<void> {
  await db.deleteFrom('images').where('name', '=', name).execute();
}

/** Names of the VMs and templates that depend on the image (children depend on it through their template). */
export async function imageUsers(db: Db, name: string): Promise<string[]> {
  const vms = await db.selectFrom('vms').select('name').where('image_name', '=', name).execute();
  const templates = await db.selectFrom('templates').select('name').where('image_name', '=', name).execute();
  return [...new Set([...vms.map((r) => r.name), ...templates.map((r) => `template ${r.name}`)])];
}
