import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LOCAL_HOST_ID, type Db } from '../../src/store/db.js';
import { getImage, upsertReadyImage } from '../../src/store/images-repo.js';
import { insertVm } from '../../src/store/vms-repo.js';
import { checkBuiltName, registerBuiltImage, removeImage, resolveImageBoot } from '../../src/image/image-registry.js';
import { digestFile, writeManifest, type ImageManifest } from '../../src/image/manifest.js';
import { withTempDir } from '../helpers/temp-dir.js';
import { testActor } from '../helpers/actor.js';
import { openTestStore } from '../helpers/store.js';

/** A built image's files, as the builder publishes them (contents are placeholders). */
async function publishFake(images: string, hash: string): Promise<{ dir: string; manifest: ImageManifest }> {
  const dir = join(images, hash);
  mkdirSync(dir, { recursive: true });
  for (const f of ['disk.qcow2', 'vmlinuz', 'initrd.img']) writeFileSync(join(dir, f), f);
  const manifest: ImageManifest = {
    formatVersion: 1,
    source: 'built',
    createdAt: new Date().toISOString(),
    disk: { file: 'disk.qcow2', format: 'qcow2', virtualSize: 2 ** 31 },
    kernel: 'vmlinuz',
    initrd: 'initrd.img',
    cmdline: 'root=/dev/vda rw console=ttyS0',
    files: {},
  };
  for (const f of ['disk.qcow2', 'vmlinuz', 'initrd.img']) manifest.files[f] = await digestFile(join(dir, f));
  await writeManifest(dir, manifest);
  return { dir, manifest };
}

async function register(db: Db, images: string, name: string, hash = 'aaaaaaaaaaaaaaaa'): Promise<string> {
  const { dir, manifest } = await publishFake(images, hash);
  await registerBuiltImage(db, name, { dir, manifest, recipeHash: hash, cached: false, seconds: 1 });
  return dir;
}

async function useImage(db: Db, vm: string, image: string): Promise<void> {
  const now = new Date().toISOString();
  await insertVm(db, { name: vm, host_id: LOCAL_HOST_ID, image_name: image, state: 'running', role: 'vm', dir: '/d', spec_json: '{}', last_error: null, created_at: now, updated_at: now }, await testActor());
}

test('image rm refuses while a VM uses the image, and keeps the record', withTempDir('vmfork-reg-', async (images) => {
  const db = await openTestStore();
  await register(db, images, 'default');
  await useImage(db, 'web-1', 'default');
  await assert.rejects(removeImage(db, images, 'default'), (err: { code: string; details: { vms: string[] } }) => {
    assert.equal(err.code, 'VMFORK_IMAGE_IN_USE');
    assert.deepEqual(err.details.vms, ['web-1']);
    return true;
  });
  assert.ok(await getImage(db, 'default'));
  await db.deleteFrom('vms').execute(); // what destroying the VM does
  assert.equal((await removeImage(db, images, 'default')).name, 'default');
  await assert.rejects(removeImage(db, images, 'default'), { code: 'VMFORK_IMAGE_NOT_FOUND' });
  await db.destroy();
}));

test('image rm of a built image keeps the shared cache unless --purge, and never files another record uses', withTempDir('vmfork-reg-', async (images) => {
  const db = await openTestStore();
  const dir = await register(db, images, 'default');
  await register(db, images, 'alias');
  assert.deepEqual(await removeImage(db, images, 'alias', { purge: true }), { name: 'alias', dir, filesRemoved: false, keptBecause: 'other-records' });
  assert.deepEqual(await removeImage(db, images, 'default'), { name: 'default', dir, filesRemoved: false, keptBecause: 'shared-cache' });
  assert.ok(existsSync(join(dir, 'disk.qcow2')));
  await register(db, images, 'default');
  assert.equal((await removeImage(db, images, 'default', { purge: true })).filesRemoved, true);
  assert.ok(!existsSync(dir));
  await db.destroy();
}));

test('image rm never deletes files outside the image dir', withTempDir('vmfork-reg-', async (root) => {
  const db = await openTestStore();
  const elsewhere = join(root, 'elsewhere');
  await register(db, elsewhere, 'ext');
  const r = await removeImage(db, join(root, 'images'), 'ext', { purge: true });
  assert.equal(r.keptBecause, 'outside-image-dir');
  assert.ok(existsSync(join(elsewhere, 'aaaaaaaaaaaaaaaa', 'disk.qcow2')));
  await db.destroy();
}));

test('build names: RFC 1123, never over an imported image, not re-pointed while in use', withTempDir('vmfork-reg-', async (images) => {
  const db = await openTestStore();
  for (const bad of ['Default', '-x', 'a_b', 'x'.repeat(64), '']) await assert.rejects(checkBuiltName(db, bad, 'h'), { code: 'VMFORK_INVALID_NAME' }, bad);
  await checkBuiltName(db, 'fresh', 'h');
  await upsertReadyImage(db, { name: 'mine', source: 'imported', disk_path: '/x/disk.qcow2', kernel_path: null, initrd_path: null, manifest_path: null, recipe_hash: null, virtual_size: 1, file_size: 1, created_at: '' });
  await assert.rejects(checkBuiltName(db, 'mine', 'h'), { code: 'VMFORK_IMAGE_EXISTS' });
  await register(db, images, 'default', 'aaaaaaaaaaaaaaaa');
  await checkBuiltName(db, 'default', 'bbbbbbbbbbbbbbbb'); // unused: a rebuild may re-point it
  await useImage(db, 'vm-1', 'default');
  await checkBuiltName(db, 'default', 'aaaaaaaaaaaaaaaa'); // same recipe: re-registering changes nothing
  await assert.rejects(checkBuiltName(db, 'default', 'bbbbbbbbbbbbbbbb'), { code: 'VMFORK_IMAGE_IN_USE' });
  await db.destroy();
}));

test('resolveImageBoot gives absolute paths, format and cmdline; missing files are IMAGE_INVALID', withTempDir('vmfork-reg-', async (images) => {
  const db = await openTestStore();
  const dir = await register(db, images, 'default');
  const boot = await resolveImageBoot(db, 'default');
  assert.deepEqual(
    { disk: boot.disk, kernel: boot.kernel, initrd: boot.initrd, cmdline: boot.cmdline, diskFormat: boot.diskFormat, virtualSize: boot.virtualSize },
    { disk: join(dir, 'disk.qcow2'), kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img'), cmdline: 'root=/dev/vda rw console=ttyS0', diskFormat: 'qcow2', virtualSize: 2 ** 31 },
  );
  assert.match(boot.diskSha256 ?? '', /^[0-9a-f]{64}$/);
  await assert.rejects(resolveImageBoot(db, 'nope'), { code: 'VMFORK_IMAGE_NOT_FOUND' });
  const { rmSync } = await import('node:fs');
  rmSync(join(dir, 'initrd.img'));
  await assert.rejects(resolveImageBoot(db, 'default'), { code: 'VMFORK_IMAGE_INVALID', message: /initrd\.img/ });
  await db.destroy();
}));
