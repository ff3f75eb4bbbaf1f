import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getPool, listLeases, listReplicaRows } from '../../src/store/index.js';
import { getTaskView } from '../../src/task/index.js';
import { children, deskSpec, withPool } from './scripted-parts.js';

test('create, then resize, then power-off: each waits behind the one before, and they run in that order', withPool(async ({ deps, parts, service, ended, othersHadTheirTurn }) => {
  parts.hold('fork desk-2');
  const create = await service.createPool(deskSpec({ size: { max: 2 } }));
  await parts.reached('fork desk-2');
  const resize = await service.resizePool('desk', { max: 3 });
  assert.equal(resize.state, 'queued');
  assert.equal(resize.queuedBehind, create.taskId);
  assert.deepEqual(resize.supersedes, []);
  const off = await service.powerOff('desk-1');
  assert.equal(off.state, 'queued');
  assert.equal(off.queuedBehind, resize.taskId, 'a power operation waits for the pool operation before it');
  await othersHadTheirTurn();
  assert.deepEqual([(await getTaskView(deps, resize.taskId)).state, (await getTaskView(deps, off.taskId)).state], ['queued', 'queued']);
  assert.equal(parts.calls.at(-1), 'fork desk-2', 'nothing else began while the create forks');
  parts.release('fork desk-2');
  for (const t of [create, resize, off]) assert.equal((await ended(t.taskId)).state, 'succeeded');
  const followUp = (await getTaskView(deps, off.taskId)).result?.followUp;
  assert.equal(typeof followUp, 'string', 'the refresh queued a converge');
  assert.equal((await ended(followUp as string)).state, 'succeeded');
  assert.deepEqual(parts.calls, [
    'replica', 'template', 'fork desk-1', 'fork desk-2', // create
    'replica reused', 'template', 'fork desk-3', // resize
    'destroy desk-1', // power-off of a non-persistent child: refreshed
    'replica reused', 'template', 'fork desk-1', // its follow-up converge (up-front: every child forked)
  ]);
  assert.deepEqual(parts.overlaps, []);
  assert.deepEqual(await children(deps), ['desk-1:running', 'desk-2:running', 'desk-3:running']);
}));

test('two resizes waiting in the queue are one request: the earlier is cancelled, the last wins, the 202 says so', withPool(async ({ deps, parts, service, ended }) => {
  parts.hold('fork desk-2');
  const create = await service.createPool(deskSpec({ size: { max: 2 } }));
  await parts.reached('fork desk-2');
  const first = await service.resizePool('desk', { max: 3 });
  const last = await service.resizePool('desk', { max: 5 });
  assert.deepEqual(last.supersedes, [first.taskId]);
  assert.equal(last.queuedBehind, create.taskId, 'it waits for the create, not for the resize it replaced');
  assert.equal((await getTaskView(deps, first.taskId)).state, 'cancelled');
  parts.release('fork desk-2');
  assert.equal((await ended(last.taskId)).state, 'succeeded');
  assert.equal((await ended(first.taskId)).state, 'cancelled');
  assert.deepEqual(await children(deps), ['desk-1:running', 'desk-2:running', 'desk-3:running', 'desk-4:running', 'desk-5:running']);
  assert.equal((await service.getPool('desk')).spec.size.max, 5);
  assert.equal(parts.calls.filter((c) => c === 'template').length, 2, 'two converges ran: the create and the last resize');
  assert.equal((await getPool(deps.db, 'desk'))?.task_id, last.taskId);
}));

test('pool rm cancels what is queued and running on the pool; meanwhile any other request on it is a 409', withPool(async ({ deps, parts, service, ended }) => {
  parts.hold('fork desk-2');
  const create = await service.createPool(deskSpec({ size: { max: 3 } }));
  await parts.reached('fork desk-2');
  const resize = await service.resizePool('desk', { max: 4 });
  const rm = await service.removePool('desk');
  assert.equal(rm.state, 'queued');
  assert.equal((await getTaskView(deps, resize.taskId)).state, 'cancelled', 'the queued resize never runs');
  assert.equal((await getTaskView(deps, create.taskId)).state, 'cancelling', 'the running create stops at its next step');
  const refused = { code: 'VMFORK_POOL_STATE', status: 409, message: new RegExp(`being removed \\(task ${rm.taskId}\\)`) };
  await assert.rejects(service.resizePool('desk', { max: 2 }), refused);
  await assert.rejects(service.powerOn('desk-1'), refused);
  await assert.rejects(service.powerOff('desk-1'), refused);
  assert.equal((await service.removePool('desk')).taskId, rm.taskId, 'a second rm answers with the first');
  // the child being forked finishes (a fork is seconds); the create then stops and, being a create, leaves nothing
  parts.release('fork desk-2');
  assert.equal((await ended(create.taskId)).state, 'cancelled');
  assert.equal((await ended(rm.taskId)).state, 'succeeded');
  assert.equal((await getTaskView(deps, resize.taskId)).state, 'cancelled');
  assert.ok(!parts.calls.includes('fork desk-3'), 'the third child was never forked');
  assert.equal(await getPool(deps.db, 'desk'), undefined);
  assert.deepEqual(await children(deps), []);
  assert.deepEqual(await listLeases(deps.db), []);
  assert.equal((await listReplicaRows(deps.db)).length, 1, 'the replica stays: a shared, reusable cache');
}));
