import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { importImage, nameFromFile } from '../../src/image/image-import.js';
import { resolveImageBoot } from '../../src/image/image-registry.js';
import { sha256File } from '../../src/util/file-hash.js';
import { createImage } from '../../src/qemu/qemu-img.js';
import { getImage } from '../../src/store/images-repo.js';
import { withTempDir } from '../helpers/temp-dir.js';
import { openTestStore, refuseInserts } from '../helpers/store.js';

// Real qemu-img on small images: these checks are about what qemu-img says, so a fake would prove nothing.

/** A file that passes the bzImage check: "HdrS" at 0x202. */
function fakeKernel(path: string): void {
  const buf = Buffer.alloc(0x300);
  buf.write('HdrS', 0x202, 'latin1');
  writeFileSync(path, buf);
}

test('nameFromFile derives an RFC 1123 name or gives up', () => {
  assert.equal(nameFromFile('/x/Debian_12-Generic.qcow2'), 'debian-12-generic');
  assert.equal(nameFromFile('disk.img'), 'disk');
  assert.equal(nameFromFile('___.raw'), undefined);
});

test('import copies a qcow2 (the original untouched), registers it, and boot facts resolve', withTempDir('vmfork-import-', async (dir) => {
  const images = join(dir, 'images');
  const src = join(dir, 'My Disk.qcow2');
  await createImage(src, { format: 'qcow2', sizeBytes: 64 * 1024 ** 2 });
  const before = await sha256File(src);
  fakeKernel(join(dir, 'bzImage'));
  writeFileSync(join(dir, 'initrd'), 'initrd');
  const db = await openTestStore();
  const r = await importImage(db, { imagesDir: images, file: src, kernel: join(dir, 'bzImage'), initrd: join(dir, 'initrd'), cmdline: 'root=/dev/vda1 console=ttyS0' });
  assert.equal(r.row.name, 'my-disk');
  assert.equal(r.dir, join(images, 'imported-my-disk'));
  assert.deepEqual(readdirSync(r.dir).sort(), ['disk.qcow2', 'initrd.img', 'manifest.json', 'vmlinuz']);
  assert.equal(await sha256File(src), before, 'the user file is not modified');
  assert.ok(existsSync(src), 'nor moved');
  assert.equal(r.row.virtual_size, 64 * 1024 ** 2);
  const boot = await resolveImageBoot(db, 'my-disk');
  assert.equal(boot.cmdline, 'root=/dev/vda1 console=ttyS0');
  assert.equal(boot.diskFormat, 'qcow2');
  assert.equal(readFileSync(boot.initrd ?? '', 'utf8'), 'initrd');
  await assert.rejects(importImage(db, { imagesDir: images, file: src, name: 'my-disk' }), { code: 'VMFORK_IMAGE_EXISTS' });
  await db.destroy();
}));

test('a raw image is copied sparsely and stays raw', withTempDir('vmfork-import-', async (dir) => {
  const src = join(dir, 'disk.raw');
  await createImage(src, { format: 'raw', sizeBytes: 256 * 1024 ** 2 });
  const db = await openTestStore();
  const r = await importImage(db, { imagesDir: join(dir, 'images'), file: src, name: 'rawdisk' });
  assert.equal(r.manifest.disk.format, 'raw');
  assert.equal(r.manifest.cmdline, null);
  assert.ok(statSync(r.row.disk_path).blocks * 512 < 1024 ** 2, 'holes preserved');
  await db.destroy();
}));

test('bad input is refused before anything is copied', withTempDir('vmfork-import-', async (dir) => {
  const images = join(dir, 'images');
  const db = await openTestStore();
  const good = join(dir, 'good.qcow2');
  await createImage(good, { format: 'qcow2', sizeBytes: 1024 ** 2 });
  const overlay = join(dir, 'overlay.qcow2');
  const { createOverlay } = await import('../../src/qemu/qemu-img.js');
  await createOverlay(good, overlay, { backingFormat: 'qcow2' });
  writeFileSync(join(dir, 'notakernel'), Buffer.alloc(4000));
  const cases: [string, Parameters<typeof importImage>[1], string][] = [
    ['not a disk at all', { imagesDir: images, file: join(dir, 'notakernel'), name: 'a' }, 'VMFORK_IMAGE_INVALID'],
    ['missing file', { imagesDir: images, file: join(dir, 'nope.qcow2'), name: 'a' }, 'VMFORK_IMAGE_INVALID'],
    ['a directory', { imagesDir: images, file: dir, name: 'a' }, 'VMFORK_IMAGE_INVALID'],
    ['backing file', { imagesDir: images, file: overlay, name: 'a' }, 'VMFORK_IMAGE_INVALID'],
    ['not a kernel', { imagesDir: images, file: good, name: 'a', kernel: join(dir, 'notakernel') }, 'VMFORK_IMAGE_INVALID'],
    ['initrd alone', { imagesDir: images, file: good, name: 'a', initrd: good }, 'VMFORK_INVALID_ARGUMENT'],
    ['bad name', { imagesDir: images, file: good, name: 'Bad_Name' }, 'VMFORK_INVALID_NAME'],
  ];
  for (const [what, options, code] of cases) await assert.rejects(importImage(db, options), { code }, what);
  // a truncated qcow2: the header promises an L1 table the file does not have
  const broken = join(dir, 'broken.qcow2');
  writeFileSync(broken, readFileSync(good).subarray(0, 512));
  await assert.rejects(importImage(db, { imagesDir: images, file: broken, name: 'a' }), { code: 'VMFORK_IMAGE_INVALID' });
  assert.ok(!existsSync(images) || readdirSync(images).length === 0, 'nothing copied');
  await db.destroy();
}));

test('a failure after the copy rolls it back: no files, no record', withTempDir('vmfork-import-', async (dir) => {
  const images = join(dir, 'images');
  const src = join(dir, 'disk.qcow2');
  await createImage(src, { format: 'qcow2', sizeBytes: 1024 ** 2 });
  const db = await openTestStore();
  // the store refuses the insert, as a full or locked database would
  await refuseInserts(db, 'images');
  await assert.rejects(importImage(db, { imagesDir: images, file: src, name: 'disk' }), /store refused/);
  assert.deepEqual(readdirSync(images), [], 'neither imported-disk nor a work dir remains');
  assert.equal(await getImage(db, 'disk'), undefined);
  await db.destroy();
}));
