import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOCAL_HOST_ID, migrate, openStore } from '../../src/store/db.js';
import { MIGRATIONS } from '../../src/store/migrations/index.js';
import { insertVm, requireVm } from '../../src/store/vms-repo.js';
import { requireImage, upsertReadyImage } from '../../src/store/images-repo.js';
import { testActor } from '../helpers/actor.js';

test('migrations apply once, in order, and are idempotent on reopen', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmfork-db-'));
  try {
    const path = join(dir, 'vmfork.db');
    const db = await openStore(path);
    const applied = await db.selectFrom('kysely_migration' as never).select('name' as never).execute();
    assert.deepEqual(applied.map((r) => (r as { name: string }).name), Object.keys(MIGRATIONS).sort());
    assert.deepEqual(await migrate(db), [], 'nothing left to apply');
    const mode = await db.executeQuery<{ journal_mode: string }>({ sql: 'pragma journal_mode', parameters: [], query: { kind: 'RawNode' } } as never);
    assert.equal(mode.rows[0]?.journal_mode, 'wal');
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
  const db = await openStore(':memory:');
  await assert.rejects(requireImage(db, 'nope'), { code: 'VMFORK_IMAGE_NOT_FOUND' });
  await assert.rejects(requireVm(db, 'nope'), { code: 'VMFORK_VM_NOT_FOUND' });
  const now = new Date().toISOString();
  await upsertReadyImage(db, { name: 'img', source: 'imported', disk_path: '/x.qcow2', kernel_path: null, initrd_path: null, manifest_path: null, recipe_hash: null, virtual_size: 1, file_size: 1, created_at: now });
  const vm = { name: 'a', host_id: LOCAL_HOST_ID, image_name: 'img', state: 'creating', role: 'vm', dir: '/d', spec_json: '{}', last_error: null, created_at: now, updated_at: now } as const;
  await insertVm(db, vm, await testActor());
  await assert.rejects(insertVm(db, vm, await testActor()), { code: 'VMFORK_VM_EXISTS' });
  await db.destroy();
});
