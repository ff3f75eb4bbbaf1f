import { VmforkError } from '../errors.js';
import type { Db } from './db.js';
import { isUniqueViolation } from './db.js';
import type { ImageRow, NewImage } from './schema.js';
import type { Actor } from '../state/index.js';
import { NO_OWNER, ownerColumns } from './transition.js';

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

type ImageFields = Omit<NewImage, 'owner_pid' | 'owner_start_time' | 'owner_op' | 'owner_boot' | 'state' | 'updated_at'>;

/** Reserves an image name in `state` (owned by the actor while it is transitional); a taken name is VMFORK_IMAGE_EXISTS. */
export async function insertImage(db: Db, image: ImageFields & { state: NewImage['state'] }, actor: Actor): Promise<void> {
  try {
    await db
      .insertInto('images')
      .values({ ...image, updated_at: image.created_at, ...ownerColumns('images', image.state ?? 'ready', actor) })
      .execute();
  } catch (err) {
    if (isUniqueViolation(err)) {
      throw new VmforkError('VMFORK_IMAGE_EXISTS', `an image named "${image.name}" already exists`, { cause: err, details: { image: image.name } });
    }
    throw err;
  }
}

/**
 * Points a `ready` image record at new files (a rebuild under a new recipe), or inserts it ready. A record being
 * imported or removed is left alone: VMFORK_IMAGE_STATE.
 */
export async function upsertReadyImage(db: Db, image: ImageFields): Promise<void> {
  const now = new Date().toISOString();
  const updated = await db
    .updateTable('images')
    .set({ ...image, updated_at: now })
    .where('name', '=', image.name)
    .where('state', '=', 'ready')
    .executeTakeFirst();
  if (Number(updated.numUpdatedRows) === 1) return;
  try {
    await db
      .insertInto('images')
      .values({ ...image, state: 'ready', updated_at: now, ...NO_OWNER })
      .execute();
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    const row = await requireImage(db, image.name);
    throw new VmforkError('VMFORK_IMAGE_STATE', `image "${image.name}" is ${row.state}; try again once that finishes`, { cause: err, details: { image: image.name, state: row.state } });
  }
}

/** Updates an image's file facts (never its state or owner). */
export async function updateImage(db: Db, name: string, update: Partial<Pick<ImageFields, 'virtual_size' | 'file_size'>>): Promise<void> {
  await db.updateTable('images').set({ ...update, updated_at: new Date().toISOString() }).where('name', '=', name).execute();
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
