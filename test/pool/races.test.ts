import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getVm, listLeases } from '../../src/store/index.js';
import { getTaskView, startTask } from '../../src/task/index.js';
import type { TaskRunner } from '../../src/task/types.js';
import { waitUntil } from '../../src/util/index.js';
import { children, deskSpec, WAIT_MS, withPool } from './scripted-parts.js';

const registeredPool = deskSpec({ provisioning: 'on-demand', size: { max: 3, min: 0, spares: 0 } });

test('two power-ons of one registered VM: the second waits for the first, then finds it running; one fork', withPool(async ({ deps, parts, service, ended, othersHadTheirTurn }) => {
  assert.equal((await ended((await service.createPool(registeredPool)).taskId)).state, 'succeeded');
  assert.deepEqual(await children(deps), ['desk-1:registered', 'desk-2:registered', 'desk-3:registered']);
  parts.hold('fork desk-1');
  const a = await service.powerOn('desk-1');
  const b = await service.powerOn('desk-1');
  assert.equal(b.state, 'queued');
  assert.equal(b.queuedBehind, a.taskId);
  await parts.reached('fork desk-1');
  await othersHadTheirTurn();
  assert.equal((await getTaskView(deps, b.taskId)).state, 'queued', 'the second power-on waits while the first forks');
  parts.release('fork desk-1');
  const [ta, tb] = [await ended(a.taskId), await ended(b.taskId)];
  assert.equal(ta.state, 'succeeded', JSON.stringify(ta.lastError));
  assert.equal(tb.state, 'succeeded', JSON.stringify(tb.lastError));
  assert.equal(ta.result?.action, 'forked');
  assert.equal(tb.result?.action, 'unchanged');
  assert.equal(parts.calls.filter((c) => c === 'fork desk-1').length, 1);
  assert.ok(!parts.calls.includes('destroy desk-1'));
  assert.equal((await ended(ta.result?.followUp as string)).state, 'succeeded');
  assert.deepEqual(parts.overlaps, []);
  assert.equal((await getVm(deps.db, 'desk-1'))?.state, 'running');
}));

test('two power-ons of one registered VM outside the queue: one wins, the loser fails VMFORK_VM_STATE and leaves the winner intact', withPool(async ({ deps, parts, service, ended }) => {
  assert.equal((await ended((await service.createPool(registeredPool)).taskId)).state, 'succeeded');
  parts.hold('fork desk-1');
  // as two servers that did not share a queue would: the claim (registered → forking) decides
  const runner = service.runners['vm-power-on'] as TaskRunner;
  const ids = await Promise.all([1, 2].map(() => startTask(deps, { kind: 'vm-power-on', target: 'desk-1', input: { pool: 'desk' } }, runner)));
  // the loser ends while the winner is still held in its fork: it has touched nothing of the winner's
  const loser = await waitUntil(async () => {
    for (const id of ids) if ((await getTaskView(deps, id)).state === 'failed') return id;
    return undefined;
  }, { deadlineMs: WAIT_MS, everyMs: 10, what: 'the losing power-on to fail' });
  const winner = ids.find((id) => id !== loser) as string;
  const lost = await getTaskView(deps, loser);
  assert.equal(lost.lastError?.code, 'VMFORK_VM_STATE');
  assert.equal((await getVm(deps.db, 'desk-1'))?.state, 'forking', 'the winner is still forking it');
  parts.release('fork desk-1');
  const won = await ended(winner);
  assert.equal(won.state, 'succeeded');
  assert.equal(won.result?.action, 'forked');
  assert.equal(parts.calls.filter((c) => c === 'fork desk-1').length, 1);
  assert.ok(!parts.calls.includes('destroy desk-1'), 'no rollback touched the winner');
  const vm = await getVm(deps.db, 'desk-1');
  assert.equal(vm?.state, 'running');
  assert.notEqual(vm?.claimed_at, null);
  assert.equal((await listLeases(deps.db)).filter((l) => l.vm_name === 'desk-1').length, 1);
  await ended(won.result?.followUp as string);
}));

test('a power-off refresh during a resize: its converge runs after the resize, never beside it', withPool(async ({ deps, parts, service, ended, othersHadTheirTurn }) => {
  assert.equal((await ended((await service.createPool(deskSpec({ size: { max: 2 } }))).taskId)).state, 'succeeded');
  parts.hold('fork desk-3');
  const resize = await service.resizePool('desk', { max: 4 });
  await parts.reached('fork desk-3');
  const off = await service.powerOff('desk-1');
  assert.equal(off.queuedBehind, resize.taskId);
  await othersHadTheirTurn();
  assert.equal((await getTaskView(deps, off.taskId)).state, 'queued', 'the power-off waits while the resize forks');
  assert.ok(!parts.calls.includes('destroy desk-1'));
  parts.release('fork desk-3');
  assert.equal((await ended(resize.taskId)).state, 'succeeded');
  const offDone = await ended(off.taskId);
  assert.equal(offDone.state, 'succeeded');
  assert.equal(offDone.result?.action, 'refreshed');
  const refresh = await getTaskView(deps, offDone.result?.followUp as string);
  assert.equal(refresh.kind, 'pool-converge');
  assert.equal((await ended(refresh.id)).state, 'succeeded');
  assert.deepEqual(parts.overlaps, [], 'no two calls of the pool layer ever ran at once');
  const from = parts.calls.indexOf('fork desk-3');
  assert.deepEqual(parts.calls.slice(from), ['fork desk-3', 'fork desk-4', 'destroy desk-1', 'replica reused', 'template', 'fork desk-1']);
  assert.deepEqual(await children(deps), ['desk-1:running', 'desk-2:running', 'desk-3:running', 'desk-4:running']);
}));
