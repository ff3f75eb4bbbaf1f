import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getPool, listLeases, listReplicaRows, listTemplates } from '../../src/store/index.js';
import { children, deskSpec, withPool } from './scripted-parts.js';

test('an up-front pool converges to all its children: one replica, its template, every child forked', withPool(async ({ deps, parts, service, ended }) => {
  const { taskId, queuedBehind } = await service.createPool(deskSpec({ size: { max: 3 } }));
  assert.equal(queuedBehind, null, 'nothing ahead of it in its queue');
  const task = await ended(taskId);
  assert.equal(task.state, 'succeeded', JSON.stringify(task.lastError));
  assert.deepEqual(parts.calls, ['replica', 'template', 'fork desk-1', 'fork desk-2', 'fork desk-3']);
  assert.deepEqual(await children(deps), ['desk-1:running', 'desk-2:running', 'desk-3:running']);
  assert.equal((await listLeases(deps.db)).length, 3);
  const pool = await getPool(deps.db, 'desk');
  const [replica] = await listReplicaRows(deps.db);
  const [template] = await listTemplates(deps.db);
  assert.equal(pool?.state, 'ready');
  assert.equal(pool?.replica_id, replica?.id);
  assert.equal(pool?.template_name, template?.name);
  assert.equal(template?.replica_id, replica?.id);
  assert.deepEqual(task.result?.forked, ['desk-1', 'desk-2', 'desk-3']);
  assert.equal(task.result?.replicaReused, false);
  assert.deepEqual(parts.overlaps, []);
}));

test('an on-demand pool forks min and spares; the rest are pre-registered with their names and addresses', withPool(async ({ deps, parts, service, ended }) => {
  const { taskId } = await service.createPool(deskSpec({ provisioning: 'on-demand', size: { max: 5, min: 1, spares: 2 } }));
  assert.equal((await ended(taskId)).state, 'succeeded');
  // nobody has claimed a child yet: max(min 1, 0 claimed + 2 spares) = 2 forked
  assert.deepEqual(await children(deps), ['desk-1:running', 'desk-2:running', 'desk-3:registered', 'desk-4:registered', 'desk-5:registered']);
  assert.deepEqual(parts.calls.slice(2), ['fork desk-1', 'fork desk-2', 'register desk-3', 'register desk-4', 'register desk-5']);
  assert.equal((await listLeases(deps.db)).length, 5, 'a registered child holds its address');
}));

test('a resize grows a pool from the replica it has, and shrinks it by the names it dropped', withPool(async ({ deps, parts, service, ended }) => {
  assert.equal((await ended((await service.createPool(deskSpec({ size: { max: 2 } }))).taskId)).state, 'succeeded');
  const up = await ended((await service.resizePool('desk', { max: 4 })).taskId);
  assert.equal(up.state, 'succeeded');
  assert.equal(up.result?.replicaReused, true, 'no second replica');
  assert.deepEqual(up.result?.forked, ['desk-3', 'desk-4']);
  assert.deepEqual(await children(deps), ['desk-1:running', 'desk-2:running', 'desk-3:running', 'desk-4:running']);
  const down = await ended((await service.resizePool('desk', { max: 1 })).taskId);
  assert.equal(down.state, 'succeeded');
  assert.deepEqual(down.result?.removed, ['desk-2', 'desk-3', 'desk-4']);
  assert.deepEqual(await children(deps), ['desk-1:running']);
  assert.equal((await listLeases(deps.db)).length, 1, 'the removed children released their addresses');
  assert.equal((await service.getPool('desk')).spec.size.max, 1);
  assert.equal((await getPool(deps.db, 'desk'))?.state, 'ready');
  assert.equal(parts.calls.filter((c) => c === 'replica').length, 1);
}));

test('a failing child under stopOnError: the pool is failed, the children made stay, the rest are never forked', withPool(async ({ deps, parts, service, ended }) => {
  parts.failing.add('desk-2');
  const task = await ended((await service.createPool(deskSpec({ size: { max: 3 }, stopOnError: true }))).taskId);
  assert.equal(task.state, 'failed');
  assert.equal(task.lastError?.code, 'VMFORK_FORK_FAILED');
  assert.deepEqual(parts.calls.slice(2), ['fork desk-1', 'fork desk-2'], 'desk-3 never forked');
  assert.deepEqual(await children(deps), ['desk-1:running'], 'the failed child rolled back, the skipped one released');
  assert.equal((await listLeases(deps.db)).length, 1);
  const pool = await getPool(deps.db, 'desk');
  assert.equal(pool?.state, 'failed');
  assert.match(pool?.last_error ?? '', /desk-2/);
  // a resize later completes it
  parts.failing.clear();
  assert.equal((await ended((await service.resizePool('desk', { max: 3 })).taskId)).state, 'succeeded');
  assert.deepEqual(await children(deps), ['desk-1:running', 'desk-2:running', 'desk-3:running']);
}));

test('two pools that agree on phase 1 share one replica; it cannot be removed while a pool uses it', withPool(async ({ deps, parts, service, ended }) => {
  assert.equal((await ended((await service.createPool(deskSpec({ size: { max: 1 } }))).taskId)).state, 'succeeded');
  const lab = await ended((await service.createPool(deskSpec({ name: 'lab', size: { max: 2 }, memory: '256M' }))).taskId);
  assert.equal(lab.state, 'succeeded');
  assert.equal(lab.result?.replicaReused, true);
  assert.deepEqual(parts.calls.filter((c) => c.startsWith('replica')), ['replica', 'replica reused']);
  const [replica, ...more] = await service.listReplicas();
  assert.equal(more.length, 0);
  assert.equal((await listTemplates(deps.db)).length, 2, 'one template per shape, both of the one replica');
  await assert.rejects(service.removeReplica(replica?.id ?? ''), { code: 'VMFORK_REPLICA_IN_USE', message: /desk, lab/ });
  assert.equal((await ended((await service.removePool('desk')).taskId)).state, 'succeeded');
  assert.deepEqual(await children(deps), []);
  assert.deepEqual(await children(deps, 'lab'), ['lab-1:running', 'lab-2:running']);
  await assert.rejects(service.removeReplica(replica?.id ?? ''), { code: 'VMFORK_REPLICA_IN_USE', message: /lab/ });
}));
