import { stat } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { VmforkError } from '../errors.js';
import { actorFor } from '../host/index.js';
import type { Actor } from '../state/index.js';
import { deleteImage, getImage, imageUsers, listImages, requireImage, transition, upsertReadyImage, withWriteLock, type Db, type ImageRow } from '../store/index.js';
import { assertValidName } from '../util/index.js';
import { discardDir } from './build-dir.js';
import type { BuiltImage } from './builder.js';
import { imageGuestAgent, readManifest, type ImageGuestAgent, type ImageManifest } from './manifest.js';

/** What a VM needs to boot an image: absolute paths and the kernel command line. */
export interface ImageBoot {
  name: string;
  source: 'built' | 'imported';
  /** The base disk. Never boot it directly: create a qcow2 overlay on it (`-F diskFormat`). */
  disk: string;
  diskFormat: string;
  virtualSize: number;
  /** For -kernel/-initrd boots; null when the image boots from its own bootloader. */
  kernel: string | null;
  initrd: string | null;
  cmdline: string | null;
  /** sha256 of the base disk from the manifest: a template can record which base it was cut from. */
  diskSha256: string | null;
  /** vmfork-guest in the image (agent path), or null: forks of it use the identity script through qemu-ga. */
  guestAgent: ImageGuestAgent | null;
}

/** Combines a record and its manifest into boot facts. */
export function imageBoot(row: ImageRow, manifest: ImageManifest): ImageBoot {
  return {
    name: row.name,
    source: row.source,
    disk: row.disk_path,
    diskFormat: manifest.disk.format,
    virtualSize: manifest.disk.virtualSize,
    kernel: row.kernel_path,
    initrd: row.initrd_path,
    cmdline: manifest.cmdline,
    diskSha256: manifest.files[manifest.disk.file]?.sha256 ?? null,
    guestAgent: imageGuestAgent(manifest) ?? null,
  };
}

/**
 * Locates the files of a registered image. VMFORK_IMAGE_NOT_FOUND for an unknown name, VMFORK_IMAGE_INVALID when
 * its files are gone (e.g. a shared cache was purged by another home).
 */
export async function resolveImageBoot(db: Db, name: string): Promise<ImageBoot> {
  const row = await requireImage(db, name);
  if (row.state !== 'ready') {
    throw new VmforkError('VMFORK_IMAGE_STATE', `image "${name}" is ${row.state}; it can be used once it is ready`, { details: { image: name, state: row.state } });
  }
  if (!row.manifest_path) throw new VmforkError('VMFORK_IMAGE_INVALID', `image "${name}" has no manifest`, { details: { image: name } });
  const manifest = await readManifest(dirname(row.manifest_path));
  for (const path of [row.disk_path, row.kernel_path, row.initrd_path]) {
    if (path && !(await stat(path).then((s) => s.isFile(), () => false))) {
      throw new VmforkError('VMFORK_IMAGE_INVALID', `file ${path} of image "${name}" is missing; rebuild or re-import it`, { details: { image: name, path } });
    }
  }
  return imageBoot(row, manifest);
}

/**
 * Validates that `name` may (re)point at the built image `hash`, before any build work: an imported image is
 * never replaced, and a built one that VMs still use only by the same recipe.
 */
export async function checkBuiltName(db: Db, name: string, hash: string): Promise<void> {
  assertValidName(name, 'image');
  const row = await getImage(db, name);
  if (!row) return;
  if (row.source !== 'built') {
    throw new VmforkError('VMFORK_IMAGE_EXISTS', `image "${name}" is an imported image; pick another --name or remove it first`, { details: { image: name } });
  }
  if (row.recipe_hash !== hash) {
    const users = await imageUsers(db, name);
    if (users.length > 0) {
      throw new VmforkError('VMFORK_IMAGE_IN_USE', `image "${name}" (recipe ${row.recipe_hash}) backs ${users.join(', ')}; build under another --name`, {
        details: { image: name, vms: users },
      });
    }
  }
}

/** Records (or re-points) `name` at a built image in this home. */
export async function registerBuiltImage(db: Db, name: string, built: BuiltImage): Promise<ImageRow> {
  const { manifest, dir } = built;
  const disk = join(dir, manifest.disk.file);
  await upsertReadyImage(db, {
    name,
    source: 'built',
    disk_path: disk,
    kernel_path: manifest.kernel ? join(dir, manifest.kernel) : null,
    initrd_path: manifest.initrd ? join(dir, manifest.initrd) : null,
    manifest_path: join(dir, 'manifest.json'),
    recipe_hash: built.recipeHash,
    virtual_size: manifest.disk.virtualSize,
    file_size: manifest.files[manifest.disk.file]?.size ?? 0,
    created_at: new Date().toISOString(),
  });
  return requireImage(db, name);
}

export interface RemoveImageResult {
  name: string;
  dir: string;
  filesRemoved: boolean;
  /** Why the files stayed, when they did. */
  keptBecause?: 'other-records' | 'shared-cache' | 'outside-image-dir';
}

/**
 * Unregisters an image and removes its files when nothing else in this home points at them. Built images live
 * in a cache other homes may share (VMFORK_IMAGE_CACHE), so their files stay unless `purge`. The record goes
 * `deleting` first (refused while any VM or template uses it); a removal whose process died is finished by the
 * next vmfork command.
 */
export async function removeImage(db: Db, imagesDir: string, name: string, options: { purge?: boolean } = {}): Promise<RemoveImageResult> {
  const actor = await actorFor('image-rm');
  const row = await withWriteLock(db, async (conn) => {
    const found = await requireImage(conn, name);
    const users = await imageUsers(conn, name);
    if (users.length > 0) {
      throw new VmforkError('VMFORK_IMAGE_IN_USE', `image "${name}" backs ${users.join(', ')}; destroy them first`, { details: { image: name, vms: users } });
    }
    await transition(conn, 'images', name, found.state, 'deleting', actor);
    return found;
  });
  return finishImageRemoval(db, imagesDir, row, options);
}

async function finishImageRemoval(db: Db, imagesDir: string, row: ImageRow, options: { purge?: boolean }): Promise<RemoveImageResult> {
  const dir = dirname(row.disk_path);
  await deleteImage(db, row.name);
  const others = (await listImages(db)).filter((r) => dirname(r.disk_path) === dir).map((r) => r.name);
  const result: RemoveImageResult = { name: row.name, dir, filesRemoved: false };
  if (others.length > 0) return { ...result, keptBecause: 'other-records' };
  // only ever delete what vmfork itself put into the image dir
  if (!resolve(dir).startsWith(resolve(imagesDir) + sep)) return { ...result, keptBecause: 'outside-image-dir' };
  if (row.source === 'built' && !options.purge) return { ...result, keptBecause: 'shared-cache' };
  await discardDir(imagesDir, dir);
  return { ...result, filesRemoved: true };
}

/**
 * Heal (src/heal/) of an image whose process died: an import is rolled back (its published copy, if any, and the
 * record), a removal is finished (built files stay in the shared cache).
 */
export async function healImage(db: Db, imagesDir: string, row: ImageRow, actor: Actor): Promise<string> {
  if (row.state === 'importing') await transition(db, 'images', row.name, 'importing', 'deleting', actor);
  const r = await finishImageRemoval(db, imagesDir, row, { purge: row.state === 'importing' });
  return `${row.state === 'importing' ? 'import rolled back' : 'removal finished'}: record removed, files ${r.filesRemoved ? 'deleted' : `kept (${r.keptBecause ?? ''})`}`;
}
