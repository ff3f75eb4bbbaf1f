import { test } from 'node:test';
import { withTaskDeps } from '../helpers/task-deps.js';
import assert from 'node:assert/strict';
import { VmforkError } from '../../src/errors.js';
import { cancelTask, followTask, getTaskView, listTaskViews, recoverTasks, startTask, waitForTask, type TaskContext, type TaskEvent } from '../../src/task/index.js';
import { insertTask, LOCAL_HOST_ID } from '../../src/store/index.js';
import { deadActor, testActor } from '../helpers/actor.js';

const withDeps = withTaskDeps;

/** A promise and its resolve: lets a test hold a runner at a point and release it. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

test('startTask answers at once; the runner reports steps, children and events; the task ends succeeded with its result', () =>
  withDeps(async (deps) => {
    const release = gate();
    const id = await startTask(deps, { kind: 'pool-create', target: 'desk', input: { pool: 'desk' } }, async (ctx) => {
      await ctx.step('phase 1', 10);
      await Promise.all([ctx.child('desk-1', { state: 'forking', percent: 50 }), ctx.child('desk-2', { state: 'forking' })]);
      await release.wait;
      await ctx.child('desk-1', { state: 'running', percent: 100 });
      await ctx.event('info', 'replica reused', { replica: 'r1' });
      return { children: 2 };
    });
    const during = await getTaskView(deps, id);
    assert.ok(['queued', 'running'].includes(during.state), during.state);
    release.open();
    const done = await waitForTask(deps, id);
    assert.equal(done.state, 'succeeded');
    assert.equal(done.percent, 100);
    assert.equal(done.step, 'phase 1');
    assert.deepEqual(done.children, { 'desk-1': { state: 'running', percent: 100 }, 'desk-2': { state: 'forking', percent: 0 } });
    assert.deepEqual(done.result, { children: 2 });
    assert.deepEqual(done.input, { pool: 'desk' });
    assert.equal(done.owner, null);
    assert.equal(done.hostId, LOCAL_HOST_ID);
    const events: TaskEvent[] = [];
    await followTask(deps, id, (e) => void events.push(e));
    assert.deepEqual(events.map((e) => e.seq), events.map((_, i) => i + 1));
    assert.deepEqual(
      events.map((e) => `${e.kind}:${e.message}`),
      ['state:queued', 'state:running', 'step:phase 1', 'child:desk-1: forking', 'child:desk-2: forking', 'child:desk-1: running', 'info:replica reused', 'state:succeeded'],
    );
    assert.deepEqual((await listTaskViews(deps, { target: 'desk' })).map((t) => t.id), [id]);
  }));

test('a runner that throws fails the task with the error\'s code and message', () =>
  withDeps(async (deps) => {
    const id = await startTask(deps, { kind: 'pool-create', target: 'desk' }, async (ctx) => {
      await ctx.step('phase 1', 5);
      throw new VmforkError('VMFORK_AGENT_TIMEOUT', 'common script 10-site.sh ran over 120 s');
    });
    const done = await waitForTask(deps, id);
    assert.equal(done.state, 'failed');
    assert.deepEqual(done.lastError, { code: 'VMFORK_AGENT_TIMEOUT', message: 'The guest agent did not answer in time: common script 10-site.sh ran over 120 s' });
    const plain = await waitForTask(deps, await startTask(deps, { kind: 'k', target: 't' }, () => Promise.reject(new Error('boom'))));
    assert.equal(plain.lastError?.code, 'VMFORK_INTERNAL');
  }));

test('following a live task: the replay, then each event as it is recorded, and the end', () =>
  withDeps(async (deps) => {
    const steps = [gate(), gate()];
    const id = await startTask(deps, { kind: 'k', target: 't' }, async (ctx) => {
      await ctx.step('one', 30);
      await steps[0]?.wait;
      await ctx.step('two', 60);
      await steps[1]?.wait;
    });
    const seen: string[] = [];
    const followed = followTask(deps, id, (e) => {
      seen.push(e.message);
      if (e.message === 'one') steps[0]?.open();
      if (e.message === 'two') steps[1]?.open();
    });
    await followed;
    assert.deepEqual(seen, ['queued', 'running', 'one', 'two', 'succeeded']);
    const after: number[] = [];
    await followTask(deps, id, (e) => void after.push(e.seq), { after: 3 });
    assert.deepEqual(after, [4, 5]);
  }));

test('cancel: the runner is signalled, rolls back and the task ends cancelled; an ended task cannot be cancelled', () =>
  withDeps(async (deps) => {
    const started = gate();
    let rolledBack = false;
    const id = await startTask(deps, { kind: 'k', target: 't' }, async (ctx: TaskContext) => {
      started.open();
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
      rolledBack = true;
      ctx.signal.throwIfAborted();
    });
    await started.wait;
    assert.equal(await cancelTask(deps, id), 'cancelling');
    const done = await waitForTask(deps, id);
    assert.equal(done.state, 'cancelled');
    assert.ok(rolledBack);
    await assert.rejects(cancelTask(deps, id), { code: 'VMFORK_TASK_STATE', message: /already ended \(cancelled\)/ });
    await assert.rejects(cancelTask(deps, 'nope'), { code: 'VMFORK_TASK_NOT_FOUND' });
  }));

test('secrets never reach the task record or its events in clear', () =>
  withDeps(async (deps) => {
    const id = await startTask(deps, { kind: 'k', target: 't', input: { machinePassword: true, adminPassword: 'hunter2' } }, async (ctx) => {
      await ctx.event('info', 'joined', { child: 'c1', password: 'hunter2', nested: { token: 'tok-zq9-secret' } });
      return { secret: 'x', count: 1 };
    });
    const done = await waitForTask(deps, id);
    const events: TaskEvent[] = [];
    await followTask(deps, id, (e) => void events.push(e));
    const all = JSON.stringify({ done, events });
    assert.ok(!all.includes('hunter2') && !all.includes('tok-zq9-secret'), all);
    assert.deepEqual(done.input, { machinePassword: true, adminPassword: '[redacted]' });
    assert.deepEqual(done.result, { secret: '[redacted]', count: 1 });
  }));

function leftRow(id: string, kind: string, state: 'queued' | 'running' | 'cancelling') {
  const now = new Date().toISOString();
  return { id, kind, target: 'desk', state, step: 'children', percent: 40, progress_json: '{"desk-1":{"state":"running","percent":100}}', input_json: '{"pool":"desk"}', result_json: null, last_error: null, host_id: LOCAL_HOST_ID, created_at: now, updated_at: now };
}

test('recoverTasks: a dead server\'s tasks are resumed by their kind\'s runner exactly once; unknown kinds fail; live owners are left alone', () =>
  withDeps(async (deps) => {
    const dead = await deadActor('task');
    await insertTask(deps.db, leftRow('t-run', 'pool-create', 'running'), dead);
    await insertTask(deps.db, leftRow('t-queued', 'pool-create', 'queued'), dead);
    await insertTask(deps.db, leftRow('t-cancel', 'pool-create', 'cancelling'), dead);
    await insertTask(deps.db, leftRow('t-odd', 'mystery', 'running'), dead);
    await insertTask(deps.db, leftRow('t-live', 'pool-create', 'running'), await testActor('task'));
    const calls: { id: string; resume: boolean; input: unknown; aborted: boolean }[] = [];
    const runners = {
      'pool-create': async (ctx: TaskContext) => {
        calls.push({ id: ctx.id, resume: ctx.resume, input: ctx.input, aborted: ctx.signal.aborted });
        await ctx.child('desk-2', { state: 'running', percent: 100 });
        ctx.signal.throwIfAborted();
        return { resumed: true };
      },
    };
    // two servers starting at once: each task is recovered by one of them
    const [a, b] = await Promise.all([recoverTasks(deps, runners), recoverTasks(deps, runners)]);
    const recovered = [...(a ?? []), ...(b ?? [])].sort((x, y) => x.id.localeCompare(y.id));
    assert.deepEqual(recovered.map((r) => `${r.id}:${r.action}:${r.deadOwnerPid === dead.owner.pid}`), ['t-cancel:resumed:true', 't-odd:failed:true', 't-queued:resumed:true', 't-run:resumed:true']);
    const run = await waitForTask(deps, 't-run');
    assert.equal(run.state, 'succeeded');
    assert.deepEqual(run.children, { 'desk-1': { state: 'running', percent: 100 }, 'desk-2': { state: 'running', percent: 100 } });
    assert.equal((await waitForTask(deps, 't-queued')).state, 'succeeded');
    assert.equal((await waitForTask(deps, 't-cancel')).state, 'cancelled');
    const odd = await waitForTask(deps, 't-odd');
    assert.equal(odd.state, 'failed');
    assert.equal(odd.lastError?.code, 'VMFORK_NOT_SUPPORTED');
    assert.equal((await getTaskView(deps, 't-live')).state, 'running');
    assert.deepEqual(calls.map((c) => `${c.id}:${c.resume}:${c.aborted}`).sort(), ['t-cancel:true:true', 't-queued:true:false', 't-run:true:false']);
    assert.deepEqual(calls[0]?.input, { pool: 'desk' });
    const events: TaskEvent[] = [];
    await followTask(deps, 't-run', (e) => void events.push(e));
    assert.ok(events.some((e) => e.kind === 'recovered' && new RegExp(`server pid ${dead.owner.pid} died while the task was running`).test(e.message)));
  }));
