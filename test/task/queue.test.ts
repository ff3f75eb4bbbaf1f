import { test } from 'node:test';
import { withTaskDeps } from '../helpers/task-deps.js';
import assert from 'node:assert/strict';
import { cancelTask, enqueueTask, getTaskView, vmLock, waitForTask, type TaskContext } from '../../src/task/index.js';
import type { TaskRunner } from '../../src/task/types.js';
import { waitUntil } from '../../src/util/index.js';

const withDeps = withTaskDeps;

/**
 * A runner held at a gate: it records when it started and ended in `log`, and ends when the test opens it (or,
 * cancelled, at its next step). Tests wait for these records, never for a clock.
 */
function held(log: string[], name: string): { runner: TaskRunner; open: () => void; started: () => Promise<void> } {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const runner = async (ctx: TaskContext): Promise<Record<string, unknown>> => {
    log.push(`start ${name}`);
    const stop = new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
    await Promise.race([gate, stop]);
    await ctx.step('after the gate', 50);
    ctx.signal.throwIfAborted();
    log.push(`end ${name}`);
    return { name };
  };
  const started = async (): Promise<void> => {
    await waitUntil(() => log.includes(`start ${name}`), { deadlineMs: 10_000, everyMs: 5, what: `${name} to start` });
  };
  return { runner, open, started };
}

test('two operations on one pool never run together: the second is queued behind the first, then runs', () =>
  withDeps(async (deps) => {
    const log: string[] = [];
    const a = held(log, 'resize');
    const b = held(log, 'refresh');
    const first = await enqueueTask(deps, { kind: 'pool-resize', target: 'desk', queue: 'desk' }, a.runner);
    await a.started();
    // a power-off refresh during a resize: its converge waits for the resize
    const second = await enqueueTask(deps, { kind: 'pool-converge', target: 'desk', queue: 'desk' }, b.runner);
    assert.equal(second.state, 'queued');
    assert.equal(second.queuedBehind, first.taskId);
    const view = await getTaskView(deps, second.taskId);
    assert.equal(view.queue, 'desk');
    assert.equal(view.queuedBehind, first.taskId);
    b.open(); // it may not run before its turn even when it could finish at once
    assert.deepEqual(log, ['start resize']);
    a.open();
    assert.equal((await waitForTask(deps, second.taskId)).state, 'succeeded');
    assert.deepEqual(log, ['start resize', 'end resize', 'start refresh', 'end refresh']);
  }));

test('power operations on two VMs of one pool run together; two on one VM, or one behind a converge, wait', () =>
  withDeps(async (deps) => {
    const log: string[] = [];
    const on1 = held(log, 'on desk-1');
    const on2 = held(log, 'on desk-2');
    const off1 = held(log, 'off desk-1');
    const conv = held(log, 'converge');
    const t1 = await enqueueTask(deps, { kind: 'vm-power-on', target: 'desk-1', queue: 'desk', lock: vmLock('desk-1') }, on1.runner);
    const t2 = await enqueueTask(deps, { kind: 'vm-power-on', target: 'desk-2', queue: 'desk', lock: vmLock('desk-2') }, on2.runner);
    assert.equal(t2.queuedBehind, null);
    await Promise.all([on1.started(), on2.started()]);
    const t3 = await enqueueTask(deps, { kind: 'vm-power-off', target: 'desk-1', queue: 'desk', lock: vmLock('desk-1') }, off1.runner);
    assert.equal(t3.queuedBehind, t1.taskId);
    const t4 = await enqueueTask(deps, { kind: 'pool-converge', target: 'desk', queue: 'desk' }, conv.runner);
    assert.equal(t4.queuedBehind, t3.taskId, 'a converge waits for every earlier operation of its pool');
    off1.open();
    conv.open();
    on1.open();
    await off1.started();
    assert.ok(!log.includes('start converge'), 'the converge waits while desk-2 is still being powered on');
    on2.open();
    assert.equal((await waitForTask(deps, t4.taskId)).state, 'succeeded');
    assert.ok(log.indexOf('end off desk-1') < log.indexOf('start converge'));
    assert.ok(log.indexOf('end on desk-2') < log.indexOf('start converge'));
  }));

test('a queued task cancelled never runs, and the queue moves on past it', () =>
  withDeps(async (deps) => {
    const log: string[] = [];
    const a = held(log, 'create');
    const b = held(log, 'resize');
    const c = held(log, 'rm');
    const first = await enqueueTask(deps, { kind: 'pool-create', target: 'desk', queue: 'desk' }, a.runner);
    await a.started();
    const second = await enqueueTask(deps, { kind: 'pool-resize', target: 'desk', queue: 'desk' }, b.runner);
    const third = await enqueueTask(deps, { kind: 'pool-remove', target: 'desk', queue: 'desk' }, c.runner);
    assert.equal(third.queuedBehind, second.taskId);
    assert.equal(await cancelTask(deps, second.taskId), 'cancelled');
    b.open();
    c.open();
    a.open();
    assert.equal((await waitForTask(deps, third.taskId)).state, 'succeeded');
    assert.equal((await getTaskView(deps, second.taskId)).state, 'cancelled');
    assert.equal((await getTaskView(deps, first.taskId)).state, 'succeeded');
    assert.deepEqual(log, ['start create', 'end create', 'start rm', 'end rm']);
  }));

test('a running task cancelled stops at its next step, ends cancelled, and lets the next one run', () =>
  withDeps(async (deps) => {
    const log: string[] = [];
    const a = held(log, 'create');
    const b = held(log, 'rm');
    const first = await enqueueTask(deps, { kind: 'pool-create', target: 'desk', queue: 'desk' }, a.runner);
    await a.started();
    const second = await enqueueTask(deps, { kind: 'pool-remove', target: 'desk', queue: 'desk' }, b.runner);
    b.open();
    assert.equal(await cancelTask(deps, first.taskId), 'cancelling');
    assert.equal((await waitForTask(deps, first.taskId)).state, 'cancelled');
    assert.equal((await waitForTask(deps, second.taskId)).state, 'succeeded');
    assert.deepEqual(log, ['start create', 'start rm', 'end rm']);
  }));

test('tasks of different pools, and tasks with no queue, do not wait for each other', () =>
  withDeps(async (deps) => {
    const log: string[] = [];
    const a = held(log, 'desk');
    const b = held(log, 'lab');
    const c = held(log, 'loose');
    await enqueueTask(deps, { kind: 'pool-create', target: 'desk', queue: 'desk' }, a.runner);
    const lab = await enqueueTask(deps, { kind: 'pool-create', target: 'lab', queue: 'lab' }, b.runner);
    const loose = await enqueueTask(deps, { kind: 'pool-create', target: 'x' }, c.runner);
    assert.equal(lab.queuedBehind, null);
    assert.equal(loose.queuedBehind, null);
    await Promise.all([a.started(), b.started(), c.started()]);
    a.open();
    b.open();
    c.open();
  }));
