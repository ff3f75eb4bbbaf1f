import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getPool, listLeases, listReplicaRows, listTemplates } from '../../src/store/index.js';
import { cancelTask } from '../../src/task/index.js';
import { children, deskSpec, withPool, type PoolFixture } from './scripted-parts.js';

/** A create held at `point`, cancelled there: it ends cancelled and leaves no pool, no child, no address. */
async function cancelCreateAt({ deps, parts, service, ended }: PoolFixture, point: string): Promise<void> {
  parts.hold(point);
  const { taskId } = await service.createPool(deskSpec({ size: { max: 3 } }));
  await parts.reached(point);
  assert.equal(await cancelTask(deps, taskId), 'cancelling');
  // a fork in progress finishes (cutting it short would leave more to undo); replica and template waits stop at once
  if (point.startsWith('fork ')) parts.release(point);
  assert.equal((await ended(taskId)).state, 'cancelled');
  assert.equal(await getPool(deps.db, 'desk'), undefined, 'a cancelled create leaves no pool');
  assert.deepEqual(await children(deps), []);
  assert.deepEqual(await listLeases(deps.db), []);
}

test('a create cancelled while its replica is made: the half-made replica is rolled back, nothing is left', withPool(async (f) => {
  await cancelCreateAt(f, 'replica');
  assert.deepEqual(await listReplicaRows(f.deps.db), []);
  assert.ok(!f.parts.calls.includes('template'));
}));

test('a create cancelled while its template is made: nothing of the pool is left; the replica stays for the next', withPool(async (f) => {
  await cancelCreateAt(f, 'template');
  assert.deepEqual((await listReplicaRows(f.deps.db)).map((r) => r.state), ['ready']);
  assert.deepEqual(await listTemplates(f.deps.db), []);
  assert.ok(!f.parts.calls.some((c) => c.startsWith('fork ')));
}));

test('a create cancelled between children: the one forking finishes, the rest are never forked, then all go', withPool(async (f) => {
  await cancelCreateAt(f, 'fork desk-2');
  assert.ok(!f.parts.calls.includes('fork desk-3'), 'desk-3 was released, never forked');
  assert.deepEqual(f.parts.calls.filter((c) => c.startsWith('destroy ')), ['destroy desk-1', 'destroy desk-2']);
}));

test('a resize cancelled between children keeps the children made; the pool is failed and says it was cancelled', withPool(async ({ deps, parts, service, ended }) => {
  assert.equal((await ended((await service.createPool(deskSpec({ size: { max: 1 } }))).taskId)).state, 'succeeded');
  parts.hold('fork desk-3');
  const { taskId } = await service.resizePool('desk', { max: 4 });
  await parts.reached('fork desk-3');
  await cancelTask(deps, taskId);
  parts.release('fork desk-3');
  assert.equal((await ended(taskId)).state, 'cancelled');
  assert.deepEqual(await children(deps), ['desk-1:running', 'desk-2:running', 'desk-3:running']);
  assert.ok(!parts.calls.includes('fork desk-4'));
  const pool = await getPool(deps.db, 'desk');
  assert.equal(pool?.state, 'failed');
  assert.match(pool?.last_error ?? '', new RegExp(`task ${taskId} \\(pool-resize\\) cancelled with 3 child\\(ren\\)`));
  assert.equal((await listLeases(deps.db)).length, 3);
  // a resize later completes it
  assert.equal((await ended((await service.resizePool('desk', { max: 4 })).taskId)).state, 'succeeded');
  assert.equal((await getPool(deps.db, 'desk'))?.state, 'ready');
}));
