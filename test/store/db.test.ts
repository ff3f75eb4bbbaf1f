import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { LOCAL_HOST_ID, migrate, openStore } from '../../src/store/db.js';
import { MIGRATIONS } from '../../src/store/migrations/index.js';
import { insertVm, requireVm } from '../../src/store/vms-repo.js';
import { requireImage, upsertReadyImage } from '../../src/store/images-repo.js';
import { testActor } from '../helpers/actor.js';
import { openTestStore, rawRows, testDialect, testStoreTarget } from '../helpers/store.js';
import { sql } from 'kysely';

const exec = promisify(execFile);

test('migrations apply once, in order, and are idempotent on reopen', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmfork-db-'));
  try {
    const path = await testStoreTarget(dir);
    const db = await openStore(path);
    const applied = await db.selectFrom('kysely_migration' as never).select('name' as never).execute();
    assert.deepEqual(applied.map((r) => (r as { name: string }).name).sort(), Object.keys(MIGRATIONS).sort());
    assert.deepEqual(await migrate(db), [], 'nothing left to apply');
    if (testDialect() === 'sqlite') {
      const mode = await db.executeQuery<{ journal_mode: string }>({ sql: 'pragma journal_mode', parameters: [], query: { kind: 'RawNode' } } as never);
      assert.equal(mode.rows[0]?.journal_mode, 'wal');
    }
    await db.destroy();
    const again = await openStore(path);
    const host = await again.selectFrom('hosts').selectAll().execute();
    assert.deepEqual(host.map((h) => h.id), [LOCAL_HOST_ID]);
    await again.destroy();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('unknown records raise NOT_FOUND codes; duplicate VM names VM_EXISTS', async () => {
  const db = await openTestStore();
  await assert.rejects(requireImage(db, 'nope'), { code: 'VMFORK_IMAGE_NOT_FOUND' });
  await assert.rejects(requireVm(db, 'nope'), { code: 'VMFORK_VM_NOT_FOUND' });
  const now = new Date().toISOString();
  await upsertReadyImage(db, { name: 'img', source: 'imported', disk_path: '/x.qcow2', kernel_path: null, initrd_path: null, manifest_path: null, recipe_hash: null, virtual_size: 1, file_size: 1, created_at: now });
  const vm = { name: 'a', host_id: LOCAL_HOST_ID, image_name: 'img', state: 'creating', role: 'vm', dir: '/d', spec_json: '{}', last_error: null, created_at: now, updated_at: now } as const;
  await insertVm(db, vm, await testActor());
  await assert.rejects(insertVm(db, vm, await testActor()), { code: 'VMFORK_VM_EXISTS' });
  await db.destroy();
});

test('a store migrated by a newer vmfork is refused before anything changes, naming both schemas', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmfork-db-'));
  try {
    const target = await testStoreTarget(dir);
    const db = await openStore(target);
    await sql`insert into kysely_migration (name, timestamp) values ('999-from-the-future', ${new Date().toISOString()})`.execute(db);
    await db.updateTable('hosts').set({ hostname: 'kept' }).execute();
    await db.destroy();
    const known = Object.keys(MIGRATIONS).at(-1) ?? '';
    await assert.rejects(openStore(target), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'VMFORK_STORE_SCHEMA');
      assert.match(err.message, /schema 999-from-the-future/);
      assert.ok(err.message.includes(known), err.message);
      return true;
    });
    // nothing was changed: a raw look finds the rows as they were
    assert.deepEqual(await rawRows(target, 'select hostname from hosts'), [{ hostname: 'kept' }]);
    const names = (await rawRows(target, 'select name from kysely_migration order by name')).map((r) => r.name);
    assert.deepEqual(names, [...Object.keys(MIGRATIONS).sort(), '999-from-the-future']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a database that cannot be reached is refused at open, the URL's password kept out of the message", async () => {
  // port 1 on loopback: nothing listens there, the refusal is immediate
  await assert.rejects(openStore('postgres://vmfork:s3cret@127.0.0.1:1/vmfork'), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'VMFORK_STORE_UNREACHABLE');
    assert.match(err.message, /ECONNREFUSED/);
    assert.match(err.message, /--db or VMFORK_DB/);
    assert.ok(!err.message.includes('s3cret'), err.message);
    assert.ok(err.message.includes('vmfork:***@127.0.0.1:1'), err.message);
    return true;
  });
});

test('several processes opening one new store at once: one migrates it, all open it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmfork-db-'));
  try {
    const target = await testStoreTarget(dir);
    const worker = fileURLToPath(new URL('./open-worker.js', import.meta.url));
    const outs = await Promise.all(Array.from({ length: 4 }, () => exec(process.execPath, [worker, target], { timeout: 60_000 })));
    assert.deepEqual(outs.map((o) => o.stdout), ['opened', 'opened', 'opened', 'opened']);
    const db = await openStore(target);
    const rows = await db.selectFrom('kysely_migration' as never).select('name' as never).execute();
    assert.equal(rows.length, Object.keys(MIGRATIONS).length, 'each migration applied once');
    assert.deepEqual((await db.selectFrom('hosts').select('id').execute()).map((h) => h.id), [LOCAL_HOST_ID]);
    await db.destroy();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
