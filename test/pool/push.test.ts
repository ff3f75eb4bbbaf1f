import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VmforkError } from '../../src/errors.js';
import type { PushView } from '../../src/pool/index.js';
import { getPool, getReplica, poolVms } from '../../src/store/index.js';
import { children, deskSpec, withPool, type PoolFixture } from './scripted-parts.js';

async function ready(f: PoolFixture, overrides: Record<string, unknown>): Promise<void> {
  assert.equal((await f.ended((await f.service.createPool(deskSpec(overrides))).taskId)).state, 'succeeded');
}

const rejectsWith = (code: string) => (err: unknown) => err instanceof VmforkError && err.code === code;

async function templatesOf(f: PoolFixture): Promise<Record<string, string>> {
  return Object.fromEntries((await poolVms(f.deps.db, 'desk')).map((v) => [v.name, v.template_name ?? '']));
}

test('a phase-1 push makes a new replica, refreshes the spares one at a time (min-ready held), and moves a claimed child at its release; then the old replica goes', withPool(async (f) => {
  const { deps, service, parts, ended } = f;
  await ready(f, { size: { max: 3 } });
  const before = await getPool(deps.db, 'desk');
  const oldTemplate = before?.template_name ?? '';
  const claimed = await service.claim('desk', { user: 'ada' });
  const push = await ended((await service.updatePool('desk', deskSpec({ size: { max: 3 }, disks: { disposable: '128M' } }), { minReady: 1 })).taskId);
  assert.equal(push.state, 'succeeded', JSON.stringify(push.lastError));
  const after = await service.getPool('desk');
  const rec = after.push as PushView;
  assert.equal(rec.state, 'waiting');
  assert.equal(rec.newReplica, true);
  assert.notEqual(after.template, oldTemplate);
  assert.deepEqual(rec.replaced, ['desk-2', 'desk-3']);
  assert.deepEqual(rec.pending, [claimed.vm]);
  assert.ok((rec.lowestReady ?? 0) >= 1, `min-ready held: lowest ${rec.lowestReady}`);
  assert.deepEqual(after.templates, { [oldTemplate]: 1, [after.template ?? '']: 2 });
  assert.ok(await getReplica(deps.db, before?.replica_id ?? ''), 'the old replica serves the claimed child');
  // the claimed child moves at its release; the push is done and the old replica retired
  assert.equal((await ended((await service.releaseVm(claimed.vm)).taskId)).state, 'succeeded');
  const done = await service.getPool('desk');
  assert.equal(done.push?.state, 'done');
  assert.deepEqual(Object.values(await templatesOf(f)), [done.template, done.template, done.template]);
  assert.equal(await getReplica(deps.db, before?.replica_id ?? ''), undefined, 'the old replica is gone');
  assert.ok(parts.calls.includes(`remove replica ${before?.replica_id ?? ''}`));
  assert.deepEqual(parts.overlaps, []);
}));

test('a phase-2-only push makes no replica and replaces nothing; a new size applies', withPool(async (f) => {
  const { service, ended, parts } = f;
  await ready(f, { size: { max: 2 } });
  const before = await service.getPool('desk');
  const push = await ended((await service.updatePool('desk', deskSpec({ size: { max: 3 }, customize: { perChild: [{ path: '/usr/local/lib/vmfork/per-child/10-join.sh' }] } }))).taskId);
  assert.equal(push.state, 'succeeded', JSON.stringify(push.lastError));
  const after = await service.getPool('desk');
  assert.deepEqual([after.push?.state, after.push?.newReplica, after.push?.replaced], ['done', false, []]);
  assert.equal(after.template, before.template);
  assert.equal(after.spec.customize?.perChild?.length, 1);
  assert.ok(!parts.calls.some((c) => c.startsWith('refresh')), 'no child refreshed');
  assert.deepEqual(await children(f.deps), ['desk-1:running', 'desk-2:running', 'desk-3:running']);
}));

test('force: claimed children are told, then replaced after the grace', withPool(async (f) => {
  const { service, ended, parts } = f;
  await ready(f, { size: { max: 2 } });
  const c = await service.claim('desk', {});
  const push = await ended((await service.updatePool('desk', deskSpec({ disks: { disposable: '128M' } }), { mode: 'force', graceSeconds: 0 })).taskId);
  assert.equal(push.state, 'succeeded', JSON.stringify(push.lastError));
  assert.ok(parts.calls.includes(`notify ${c.vm}`));
  assert.equal((await service.getPool('desk')).push?.state, 'done');
  assert.ok(parts.calls.includes(`refresh ${c.vm}`));
}));

test('a push that fails stops at its first error and the pool serves on the old replica and template', withPool(async (f) => {
  const { deps, service, ended, parts } = f;
  await ready(f, { size: { max: 3 } });
  const before = await service.getPool('desk');
  parts.failing.add('desk-2');
  const push = await ended((await service.updatePool('desk', deskSpec({ size: { max: 3 }, disks: { disposable: '128M' } }))).taskId);
  assert.equal(push.state, 'failed');
  const after = await service.getPool('desk');
  assert.equal(after.push?.state, 'failed');
  assert.deepEqual([after.template, after.replica, after.spec.disks.disposable], [before.template, before.replica, '64M']);
  assert.equal(after.state, 'failed');
  assert.deepEqual(after.push?.replaced, ['desk-1'], 'it stopped at desk-2: desk-3 untouched');
  assert.equal((await templatesOf(f))['desk-3'], before.template);
  assert.equal((await getPool(deps.db, 'desk'))?.template_name, before.template);
}));

test('bad pushes change nothing: another shape (memory, persistence), a min-ready leaving no room, a bad spec', withPool(async (f) => {
  const { service, parts, deps } = f;
  await ready(f, { size: { max: 2 } });
  const calls = parts.calls.length;
  const row = await getPool(deps.db, 'desk');
  await assert.rejects(service.updatePool('desk', deskSpec({ memory: '1G' })), (err: unknown) => rejectsWith('VMFORK_PUSH_INCOMPATIBLE')(err) && /memory/.test((err as Error).message));
  await assert.rejects(service.updatePool('desk', deskSpec({ persistent: true, disks: { disposable: '64M', userData: '64M' } })), rejectsWith('VMFORK_PUSH_INCOMPATIBLE'));
  await assert.rejects(service.updatePool('desk', deskSpec({ name: 'other' })), rejectsWith('VMFORK_PUSH_INCOMPATIBLE'));
  await assert.rejects(service.updatePool('desk', deskSpec(), { minReady: 2 }), rejectsWith('VMFORK_INVALID_ARGUMENT'));
  await assert.rejects(service.updatePool('desk', deskSpec({ size: { max: 0 } })), rejectsWith('VMFORK_INVALID_ARGUMENT'));
  await assert.rejects(service.updatePool('nope', deskSpec()), rejectsWith('VMFORK_POOL_NOT_FOUND'));
  assert.equal(parts.calls.length, calls);
  assert.deepEqual(await getPool(deps.db, 'desk'), row);
}));

test('a persistent pool\'s push keeps its children\'s machines: only children made from now on stand on the new template', withPool(async (f) => {
  const { service, ended, parts } = f;
  await ready(f, { persistent: true, disks: { disposable: '64M', userData: '64M' }, size: { max: 2 } });
  const push = await ended((await service.updatePool('desk', deskSpec({ persistent: true, disks: { disposable: '128M', userData: '64M' }, size: { max: 2 } }))).taskId);
  assert.equal(push.state, 'succeeded', JSON.stringify(push.lastError));
  const after = await service.getPool('desk');
  assert.deepEqual([after.push?.state, after.push?.newReplica, after.push?.replaced, after.push?.pending], ['waiting', true, [], ['desk-1', 'desk-2']]);
  assert.ok(!parts.calls.some((c) => c.startsWith('refresh')), 'no child refreshed: their /home is their users\'');
}));
