import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LOCAL_HOST_ID, type Db } from '../../src/store/db.js';
import { appendTaskEvent, getTask, insertTask, listTaskEvents, listTasks, requireTask } from '../../src/store/tasks-repo.js';
import { takeOver, transition, transitionalRows } from '../../src/store/transition.js';
import { deadActor, testActor } from '../helpers/actor.js';
import { openTestStore } from '../helpers/store.js';

async function withStore(fn: (db: Db) => Promise<void>): Promise<void> {
  const db = await openTestStore();
  try {
    await fn(db);
  } finally {
    await db.destroy();
  }
}

function task(id: string, state: 'queued' | 'running' = 'queued') {
  const now = new Date().toISOString();
  return { id, kind: 'pool-create', target: 'desk', state, step: null, percent: 0, progress_json: '{}', input_json: '{}', result_json: null, last_error: null, host_id: LOCAL_HOST_ID, created_at: now, updated_at: now };
}

test('a task changes state only through transition(), keyed by its id, owned while transitional', () =>
  withStore(async (db) => {
    const me = await testActor('task');
    await insertTask(db, task('t1'), me);
    assert.equal((await requireTask(db, 't1')).owner_op, 'task');
    await transition(db, 'tasks', 't1', 'queued', 'running', me, { step: 'phase 1' });
    await transition(db, 'tasks', 't1', 'running', 'succeeded', me, { percent: 100 });
    const row = await getTask(db, 't1');
    assert.deepEqual([row?.state, row?.step, row?.percent, row?.owner_pid], ['succeeded', 'phase 1', 100, null]);
    await assert.rejects(transition(db, 'tasks', 't1', 'succeeded', 'running', me), { code: 'VMFORK_TASK_STATE' });
    await assert.rejects(transition(db, 'tasks', 'nope', 'queued', 'running', me), { code: 'VMFORK_TASK_NOT_FOUND' });
    await assert.rejects(requireTask(db, 'nope'), { code: 'VMFORK_TASK_NOT_FOUND' });
  }));

test('events are numbered from 1 per task, also when appended concurrently', () =>
  withStore(async (db) => {
    const me = await testActor('task');
    await insertTask(db, task('a'), me);
    await insertTask(db, task('b'), me);
    const appended = await Promise.all(Array.from({ length: 20 }, (_, i) => appendTaskEvent(db, i % 2 ? 'a' : 'b', { kind: 'log', message: `m${i}`, data_json: null })));
    assert.deepEqual(appended.filter((e) => e.task_id === 'a').map((e) => e.seq).sort((x, y) => x - y), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.deepEqual((await listTaskEvents(db, 'b', 8)).map((e) => e.seq), [9, 10]);
    assert.equal((await listTasks(db, { target: 'desk' })).length, 2);
    assert.equal((await listTasks(db, { state: 'running' })).length, 0);
  }));

test('a dead owner\'s running task is a transitional row that exactly one process takes over', () =>
  withStore(async (db) => {
    const dead = await deadActor('task');
    await insertTask(db, task('t9', 'running'), dead);
    const [row] = await transitionalRows(db, 'tasks');
    assert.equal(row?.name, 't9');
    assert.ok(row);
    const me = await testActor('task');
    const wins = await Promise.all([takeOver(db, 'tasks', 't9', 'running', row, me), takeOver(db, 'tasks', 't9', 'running', row, me)]);
    assert.deepEqual(wins.sort(), [false, true]);
    assert.equal((await getTask(db, 't9'))?.owner_pid, process.pid);
  }));
