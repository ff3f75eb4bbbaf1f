import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestFile, loadVerifiedManifest, readManifest, verifyManifest, writeManifest, type ImageManifest } from '../../src/image/manifest.js';
import { withTempDir } from '../helpers/temp-dir.js';

async function fixture(dir: string): Promise<ImageManifest> {
  writeFileSync(join(dir, 'disk.qcow2'), 'disk-bytes');
  writeFileSync(join(dir, 'vmlinuz'), 'kernel-bytes');
  const manifest: ImageManifest = {
    formatVersion: 1,
    source: 'imported',
    createdAt: new Date().toISOString(),
    disk: { file: 'disk.qcow2', format: 'qcow2', virtualSize: 1024 },
    kernel: 'vmlinuz',
    initrd: null,
    cmdline: 'root=/dev/vda',
    files: { 'disk.qcow2': await digestFile(join(dir, 'disk.qcow2')), vmlinuz: await digestFile(join(dir, 'vmlinuz')) },
  };
  await writeManifest(dir, manifest);
  return manifest;
}

test('a freshly written manifest verifies, shallow and deep', withTempDir('vmfork-manifest-', async (dir) => {
  const m = await fixture(dir);
  assert.deepEqual(await readManifest(dir), m);
  assert.deepEqual(await verifyManifest(dir, m), []);
  assert.deepEqual(await verifyManifest(dir, m, { deep: true }), []);
  assert.deepEqual(m.files['disk.qcow2'], { sha256: '36756284b0b2ee311b403f3427d63697a6356e863a05aaf7d24cacba10764f2a', size: 10 });
}));

test('size changes are found by the shallow check, same-size corruption only by the deep one', withTempDir('vmfork-manifest-', async (dir) => {
  const m = await fixture(dir);
  await writeFile(join(dir, 'disk.qcow2'), 'DISK-BYTES'); // same length
  assert.deepEqual(await verifyManifest(dir, m), []);
  assert.deepEqual(await verifyManifest(dir, m, { deep: true }), ['disk.qcow2 does not match its sha256']);
  assert.equal(await loadVerifiedManifest(dir, { deep: true }), undefined);
  await writeFile(join(dir, 'vmlinuz'), 'short');
  assert.match((await verifyManifest(dir, m)).join(), /vmlinuz has 5 bytes, manifest says 12/);
}));

test('missing files and unlisted boot files are problems', withTempDir('vmfork-manifest-', async (dir) => {
  const m = await fixture(dir);
  assert.deepEqual(await verifyManifest(join(dir, 'nowhere'), m), ['disk.qcow2 is missing', 'vmlinuz is missing']);
  assert.deepEqual(await verifyManifest(dir, { ...m, initrd: 'initrd.img' }), ['initrd.img is not listed in files']);
}));

test('a missing, non-JSON or malformed manifest is VMFORK_IMAGE_INVALID', withTempDir('vmfork-manifest-', async (dir) => {
  await assert.rejects(readManifest(dir), { code: 'VMFORK_IMAGE_INVALID' });
  writeFileSync(join(dir, 'manifest.json'), '{not json');
  await assert.rejects(readManifest(dir), { code: 'VMFORK_IMAGE_INVALID', message: /not JSON/ });
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ formatVersion: 1, source: 'built', disk: { file: '../escape' } }));
  await assert.rejects(readManifest(dir), { code: 'VMFORK_IMAGE_INVALID', message: /malformed.*disk\.file/ });
  assert.equal(await loadVerifiedManifest(dir), undefined);
}));
