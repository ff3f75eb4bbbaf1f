import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, utimesSync, writeFileSync, chmodSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { qemuConfinement, SEALED_FILE_MODE } from '../../src/config/index.js';
import { assertFilesIntact, checkFile, sealFile, templateFiles, type FileRecord } from '../../src/template/files.js';
import { templateDisks, templateFileList, type TemplateRecord } from '../../src/template/record.js';

function withDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vmfork-tf-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test('sealFile makes the file read-only (0400; 0440 for the QEMU group when QEMU is confined) and records its sha256', withDir(async (dir) => {
  const p = join(dir, 'ram');
  writeFileSync(p, 'hello');
  const rec = await sealFile(p);
  assert.equal(rec.sha256, '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
  const confined = (await qemuConfinement()).on;
  assert.equal(statSync(p).mode & 0o777, SEALED_FILE_MODE | (confined ? 0o040 : 0));
  assert.deepEqual(await checkFile(rec), { ok: true, rehashed: false });
}));

test('a same-size overwrite moves ctime, is re-hashed and refused', withDir(async (dir) => {
  const p = join(dir, 'state');
  writeFileSync(p, 'AAAA');
  const rec = await sealFile(p);
  chmodSync(p, 0o644);
  const fd = openSync(p, 'r+');
  writeSync(fd, 'B', 0);
  closeSync(fd);
  // even with mtime put back, ctime moved: the fast path cannot be fooled by touch
  utimesSync(p, rec.mtimeMs / 1000, rec.mtimeMs / 1000);
  const r = await checkFile(rec);
  assert.equal(r.ok, false);
  await assert.rejects(assertFilesIntact('t', [['state', rec]]), { code: 'VMFORK_TEMPLATE_CORRUPT', message: /state: / });
}));

test('a touched but unchanged file is re-hashed and accepted; a missing one refused', withDir(async (dir) => {
  const p = join(dir, 'disk');
  writeFileSync(p, 'same');
  const rec = await sealFile(p);
  utimesSync(p, new Date(), new Date(Date.now() + 5000));
  assert.deepEqual(await checkFile(rec), { ok: true, rehashed: true });
  assert.deepEqual(await checkFile(rec, { full: true }), { ok: true, rehashed: true });
  rmSync(p);
  const gone = await checkFile(rec);
  assert.equal(gone.ok, false);
  assert.match(gone.ok ? '' : gone.problem, /missing/);
}));

test('a record lists every disk a child overlays: disk0 as `disk`, further disks by id; old records have one', () => {
  const f = (path: string): FileRecord => ({ path, sha256: 'x', size: 1, ino: 1, mtimeMs: 1, ctimeMs: 1 });
  const base = { ram: f('/t/ram'), state: f('/t/state'), disk: f('/t/disk.qcow2') };
  const old = { files: base } as unknown as TemplateRecord;
  assert.deepEqual(templateDisks(old).map((d) => d.id), ['disk0']);
  const multi = { files: { ...base, disks: { disk0: base.disk, data: f("/t/disk-data.qcow2"), scratch: f("/t/disk-scratch.qcow2") } } } as unknown as TemplateRecord;
  assert.deepEqual(templateDisks(multi).map((d) => [d.id, d.file.path]), [['disk0', '/t/disk.qcow2'], ['data', '/t/disk-data.qcow2'], ['scratch', '/t/disk-scratch.qcow2']]);
  assert.deepEqual(templateFileList(multi).map(([role]) => role), ['ram', 'state', 'disk', 'disk:data', 'disk:scratch']);
  assert.equal(templateFiles('/tpl', 'web').diskFor('data'), '/tpl/web/disk-data.qcow2');
  assert.equal(templateFiles('/tpl', 'web').diskFor('disk0'), '/tpl/web/disk.qcow2');
});
