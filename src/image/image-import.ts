import { constants } from 'node:fs';
import { access, mkdir, open, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { VmforkError } from '../errors.js';
import { actorFor, freeSpace } from '../host/index.js';
import { assertImageUsable, convert, type ImageInfo } from '../qemu/index.js';
import { deleteImage, getImage, insertImage, requireImage, transition, updateImage, type Db, type ImageRow } from '../store/index.js';
import { assertValidName, formatBytes, isValidName, run } from '../util/index.js';
import { createBuildDir, discardDir, publishDir, removeDirSafely } from './build-dir.js';
import { digestFile, writeManifest, type ImageManifest } from './manifest.js';

export interface ImportImageOptions {
  imagesDir: string;
  file: string;
  /** @default derived from the file name */
  name?: string;
  kernel?: string;
  initrd?: string;
  cmdline?: string;
}

export interface ImportedImage {
  row: ImageRow;
  manifest: ImageManifest;
  dir: string;
}

/** An image name from a file name: `Debian-12.qcow2` → `debian-12`; undefined when nothing valid remains. */
export function nameFromFile(file: string): string | undefined {
  const base = basename(file).replace(/\.(qcow2|img|raw|vmdk|vdi|vhdx|qed)$/i, '');
  const name = base.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, '');
  return isValidName(name) ? name : undefined;
}

async function requireReadableFile(path: string, what: string): Promise<number> {
  try {
    const s = await stat(path);
    if (s.isFile()) {
      await access(path, constants.R_OK);
      return s.size;
    }
  } catch (err) {
    throw new VmforkError('VMFORK_IMAGE_INVALID', `${what} ${path}: ${(err as Error).message}`, { cause: err, details: { path } });
  }
  throw new VmforkError('VMFORK_IMAGE_INVALID', `${what} ${path}: not a regular file`, { details: { path } });
}

/** A bzImage carries "HdrS" at offset 0x202 (the x86 boot protocol header); QEMU's -kernel needs one. */
async function requireBzImage(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(4);
    await fh.read(buf, 0, 4, 0x202);
    if (buf.toString('latin1') !== 'HdrS') throw new VmforkError('VMFORK_IMAGE_INVALID', `${path} is not an x86 Linux kernel (bzImage)`, { details: { path } });
  } finally {
    await fh.close();
  }
}

/** Checks everything about the user's files before anything is copied. */
async function validateImport(db: Db, options: ImportImageOptions, name: string): Promise<ImageInfo> {
  if (await getImage(db, name)) throw new VmforkError('VMFORK_IMAGE_EXISTS', `an image named "${name}" already exists`, { details: { image: name } });
  if ((options.initrd || options.cmdline) && !options.kernel) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', '--initrd and --cmdline only apply to a -kernel boot: pass --kernel too');
  }
  const size = await requireReadableFile(options.file, 'disk image');
  // unreadable or corrupt → VMFORK_IMAGE_INVALID; leaked clusters only waste space and are accepted
  const { info } = await assertImageUsable(options.file);
  if (info.backingFilename) {
    throw new VmforkError('VMFORK_IMAGE_INVALID', `${options.file} has a backing file (${info.backingFilename}); flatten it first: qemu-img convert -O qcow2 IN OUT`, {
      details: { path: options.file, backingFile: info.backingFilename },
    });
  }
  // qemu-img calls any file it does not recognize "raw"; a real raw disk is at least whole 512-byte sectors
  if (info.format === 'raw' && (size % 512 !== 0 || size < 1024 ** 2)) {
    throw new VmforkError('VMFORK_IMAGE_INVALID', `${options.file} is no disk image: not a known format, and as raw not whole 512-byte sectors of at least 1 MiB (${size} bytes)`, {
      details: { path: options.file, size },
    });
  }
  if (options.kernel) {
    await requireReadableFile(options.kernel, 'kernel');
    await requireBzImage(options.kernel);
  }
  if (options.initrd) await requireReadableFile(options.initrd, 'initrd');
  return info;
}

/** cp keeps holes (a raw image is mostly zeros); a full disk is VMFORK_NO_SPACE. */
async function copy(src: string, dest: string): Promise<void> {
  const r = await run('cp', ['--sparse=always', '--', src, dest], { allowFailure: true });
  if (r.code !== 0) {
    const code = /No space left/i.test(r.stderr) ? 'VMFORK_NO_SPACE' : 'VMFORK_INTERNAL';
    throw new VmforkError(code, `copying ${src}: ${r.stderr.trim()}`, { details: { path: src } });
  }
}

/**
 * Copies a user's disk image (and optional kernel/initrd) into `<imagesDir>/imported-<name>/` and registers it.
 * The user's files are never moved or modified. qcow2 and raw are copied as they are (sparsely); other formats
 * qemu-img reads (vmdk, vdi, vhdx, …) are converted to qcow2. The name is reserved (state `importing`) before the
 * copy, so two imports of one name cannot both run; nothing is left behind on failure, and an import whose process
 * died is rolled back by the next vmfork command.
 */
export async function importImage(db: Db, options: ImportImageOptions): Promise<ImportedImage> {
  const name = options.name ?? nameFromFile(options.file);
  if (!name) throw new VmforkError('VMFORK_INVALID_NAME', `cannot derive an image name from ${options.file}; pass --name`);
  assertValidName(name, 'image');
  const info = await validateImport(db, options, name);
  const dir = importDir(options.imagesDir, name);
  if (await stat(dir).then(() => true, () => false)) {
    throw new VmforkError('VMFORK_IMAGE_EXISTS', `${dir} already exists (imported by another home sharing this image dir?); pick another --name`, {
      details: { image: name, dir },
    });
  }
  await mkdir(options.imagesDir, { recursive: true });
  const need = Math.ceil(Math.max(info.actualSize, 1) * 1.1) + 64 * 1024 ** 2;
  const { freeBytes, measured } = await freeSpace(options.imagesDir);
  if (freeBytes < need) {
    throw new VmforkError('VMFORK_NO_SPACE', `importing needs ${formatBytes(need)} in ${measured}, only ${formatBytes(freeBytes)} free`, { details: { path: measured, freeBytes } });
  }
  const keep = info.format === 'qcow2' || info.format === 'raw';
  const diskFile = keep ? `disk.${info.format}` : 'disk.qcow2';
  const actor = await actorFor('image-import');
  const createdAt = new Date().toISOString();
  await insertImage(
    db,
    {
      name,
      source: 'imported',
      state: 'importing',
      disk_path: join(dir, diskFile),
      kernel_path: options.kernel ? join(dir, 'vmlinuz') : null,
      initrd_path: options.initrd ? join(dir, 'initrd.img') : null,
      manifest_path: join(dir, 'manifest.json'),
      recipe_hash: null,
      virtual_size: info.virtualSize,
      file_size: 0,
      created_at: createdAt,
    },
    actor,
  );
  const work = await createBuildDir(options.imagesDir);
  let published = false;
  try {
    const out = join(work, 'out');
    await mkdir(out);
    if (keep) await copy(options.file, join(out, diskFile));
    else await convert(options.file, join(out, diskFile), { outFormat: 'qcow2' });
    if (options.kernel) await copy(options.kernel, join(out, 'vmlinuz'));
    if (options.initrd) await copy(options.initrd, join(out, 'initrd.img'));
    const manifest: ImageManifest = {
      formatVersion: 1,
      source: 'imported',
      createdAt,
      disk: { file: diskFile, format: keep ? info.format : 'qcow2', virtualSize: info.virtualSize },
      kernel: options.kernel ? 'vmlinuz' : null,
      initrd: options.initrd ? 'initrd.img' : null,
      cmdline: options.kernel ? (options.cmdline ?? null) : null,
      files: {},
      import: { originalPath: resolve(options.file) },
    };
    for (const f of [manifest.disk.file, manifest.kernel, manifest.initrd]) if (f) manifest.files[f] = await digestFile(join(out, f));
    await writeManifest(out, manifest);
    if (!(await publishDir(out, dir))) throw new VmforkError('VMFORK_IMAGE_EXISTS', `${dir} appeared during the import`, { details: { image: name, dir } });
    published = true;
    await updateImage(db, name, { file_size: manifest.files[diskFile]?.size ?? 0 });
    await transition(db, 'images', name, 'importing', 'ready', actor);
    return { row: await requireImage(db, name), manifest, dir };
  } catch (err) {
    if (published) await discardDir(options.imagesDir, dir); // registered nothing: take the copy back out
    await deleteImage(db, name);
    throw err;
  } finally {
    await removeDirSafely(work);
  }
}

/** Where an imported image's files live. */
export function importDir(imagesDir: string, name: string): string {
  return join(imagesDir, `imported-${name}`);
}
