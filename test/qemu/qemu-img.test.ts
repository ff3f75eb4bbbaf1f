import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, ftruncateSync, openSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { assertImageUsable, check, convert, createImage, createOverlay, info, version } from '../../src/qemu/qemu-img.js';
import { withTempDir } from '../helpers/temp-dir.js';

const MiB = 1024 * 1024;

/** Sets the 16-bit refcount of `cluster` in a fresh qcow2's first refcount block (byte surgery for check tests). */
function setRefcount(path: string, cluster: number, value: number, fileClusters?: number): void {
  const fd = openSync(path, 'r+');
  try {
    const header = Buffer.alloc(104);
    readSync(fd, header, 0, 104, 0);
    const table = Number(header.readBigUInt64BE(48));
    const entry = Buffer.alloc(8);
    readSync(fd, entry, 0, 8, table);
    const block = Number(entry.readBigUInt64BE(0));
    const v = Buffer.alloc(2);
    v.writeUInt16BE(value);
    writeSync(fd, v, 0, 2, block + 2 * cluster);
    if (fileClusters) ftruncateSync(fd, fileClusters * 65536);
  } finally {
    closeSync(fd);
  }
}

test('version parses', async () => {
  const v = await version();
  assert.match(v.version, /^\d+\.\d+/);
  assert.match(v.build, /^qemu-img version /);
});

test('overlay over a base (in a directory with a comma): info shows format, sizes and backing file', withTempDir('vmfork-qemu-img,', async (dir) => {
  const base = join(dir, 'base.qcow2');
  const overlay = join(dir, 'child.qcow2');
  await createImage(base, { format: 'qcow2', sizeBytes: 4 * MiB });
  await createOverlay(base, overlay, { backingFormat: 'qcow2' });
  const i = await info(overlay);
  assert.equal(i.format, 'qcow2');
  assert.equal(i.virtualSize, 4 * MiB);
  assert.ok(i.actualSize > 0);
  assert.equal(i.backingFilename, base);
  assert.equal(i.fullBackingFilename, base);
  assert.equal(i.backingFormat, 'qcow2');
  assert.equal(i.dirty, false);
  const b = await info(base, { forceShare: true });
  assert.equal(b.backingFilename, undefined);
  await assert.rejects(info(join(dir, 'missing.qcow2')), { code: 'VMFORK_QEMU_IMG_FAILED', message: /No such file/ });
}));

test('convert raw → compressed qcow2 → raw keeps the bytes', withTempDir('vmfork-qemu-img,', async (dir) => {
  const raw = join(dir, 'a.raw');
  const data = Buffer.alloc(2 * MiB);
  for (let i = 0; i < data.length; i += 4096) data.write(`block ${i}`, i);
  writeFileSync(raw, data);
  await convert(raw, join(dir, 'a.qcow2'), { outFormat: 'qcow2', compress: true, srcFormat: 'raw' });
  assert.equal((await info(join(dir, 'a.qcow2'))).format, 'qcow2');
  await convert(join(dir, 'a.qcow2'), join(dir, 'b.raw'), { outFormat: 'raw' });
  assert.ok(readFileSync(join(dir, 'b.raw')).equals(data));
  await assert.rejects(convert(raw, join(dir, 'c.raw'), { outFormat: 'raw', compress: true }), { code: 'VMFORK_INVALID_ARGUMENT' });
}));

test('check: clean, leaks, corrupt, unsupported (raw), and unreadable', withTempDir('vmfork-qemu-img,', async (dir) => {
  const img = (n: string): string => join(dir, n);
  await createImage(img('clean.qcow2'), { format: 'qcow2', sizeBytes: MiB });
  assert.deepEqual(await check(img('clean.qcow2')), { status: 'clean', corruptions: 0, leaks: 0, checkErrors: 0 });

  await createImage(img('leaky.qcow2'), { format: 'qcow2', sizeBytes: MiB });
  setRefcount(img('leaky.qcow2'), 5, 1, 6); // cluster 5 counted but referenced by nothing
  assert.deepEqual(await check(img('leaky.qcow2')), { status: 'leaks', corruptions: 0, leaks: 1, checkErrors: 0 });
  await assertImageUsable(img('leaky.qcow2'));

  await createImage(img('bad.qcow2'), { format: 'qcow2', sizeBytes: MiB });
  setRefcount(img('bad.qcow2'), 0, 0); // the header cluster is in use but counted zero
  const bad = await check(img('bad.qcow2'));
  assert.equal(bad.status, 'corrupt');
  assert.ok(bad.corruptions > 0);
  await assert.rejects(assertImageUsable(img('bad.qcow2')), { code: 'VMFORK_IMAGE_INVALID', message: /corruptions/ });

  await createImage(img('r.raw'), { format: 'raw', sizeBytes: MiB });
  assert.equal((await check(img('r.raw'))).status, 'unsupported');

  writeFileSync(img('junk'), 'not an image');
  await assert.rejects(check(img('junk'), { format: 'qcow2' }), { code: 'VMFORK_QEMU_IMG_FAILED', message: /not in qcow2 format/ });
  await assert.rejects(assertImageUsable(img('nope.qcow2')), { code: 'VMFORK_IMAGE_INVALID' });
}));

test('a missing qemu-img is VMFORK_QEMU_MISSING naming the package', async () => {
  const saved = process.env.PATH;
  process.env.PATH = '/nonexistent';
  try {
    await assert.rejects(version(), { code: 'VMFORK_QEMU_MISSING', message: /apt-get install qemu-utils/ });
  } finally {
    process.env.PATH = saved;
  }
});
