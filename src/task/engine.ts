import { randomUUID } from 'node:crypto';
import { isVmforkError, toVmforkError, VmforkError } from '../errors.js';
import { actorFor } from '../host/index.js';
import { TASK_FINAL_STATES, type Actor, type TaskState } from '../state/index.js';
import { appendTaskEvent, getTask, insertTask, LOCAL_HOST_ID, notifyTaskEvent, requireTask, setQueuedBehind, transition, updateTask, type TaskRow } from '../store/index.js';
import { redactSecrets } from '../util/index.js';
import { notifyTask, running } from './bus.js';
import { blockerOf, waitForTurn } from './queue.js';
import type { ChildProgress, TaskContext, TaskDeps, TaskRequest, TaskRunner } from './types.js';

const clampPercent = (p: number): number => Math.max(0, Math.min(100, Math.round(Number.isFinite(p) ? p : 0)));

/** Appends an event (secrets redacted) and wakes the task's followers. */
export async function recordTaskEvent(deps: TaskDeps, id: string, kind: string, message: string, data?: Record<string, unknown>): Promise<void> {
  await appendTaskEvent(deps.db, id, { kind, message, data_json: data === undefined ? null : JSON.stringify(redactSecrets(data)) });
  notifyTask(id);
  // followers in other processes on a shared PostgreSQL store (another `vmfork serve`); a failed notice costs them
  // only their poll's delay
  await notifyTaskEvent(deps.db, id).catch(() => undefined);
}

/**
 * Moves a task to `to` from whatever live state it is in now. A cancel can land between reading the state and
 * writing it (the compare-and-set then fails), so the move is retried against the state found.
 */
async function settle(deps: TaskDeps, id: string, to: TaskState, actor: Actor, set: Parameters<typeof updateTask>[2] = {}): Promise<TaskState> {
  for (let attempt = 0; ; attempt++) {
    const now = await requireTask(deps.db, id);
    if (TASK_FINAL_STATES.includes(now.state)) return now.state;
    try {
      await transition(deps.db, 'tasks', id, now.state, to, actor, set);
      await recordTaskEvent(deps, id, 'state', to, { state: to, ...(set.last_error ? { error: JSON.parse(set.last_error) as unknown } : {}) });
      return to;
    } catch (err) {
      if (!isVmforkError(err) || err.code !== 'VMFORK_TASK_STATE' || attempt >= 3) throw err;
    }
  }
}

function context(deps: TaskDeps, row: TaskRow, controller: AbortController, resume: boolean): TaskContext {
  const children = JSON.parse(row.progress_json) as Record<string, ChildProgress>;
  // a runner may report children concurrently: its writes still land in the order it made them
  let chain: Promise<unknown> = Promise.resolve();
  const serial = (fn: () => Promise<void>): Promise<void> => {
    const next = chain.then(fn);
    chain = next.catch(() => undefined);
    return next;
  };
  return {
    id: row.id,
    kind: row.kind,
    target: row.target,
    input: JSON.parse(row.input_json) as Record<string, unknown>,
    resume,
    signal: controller.signal,
    step: (name, percent) =>
      serial(async () => {
        const p = percent === undefined ? undefined : clampPercent(percent);
        await updateTask(deps.db, row.id, { step: name, ...(p === undefined ? {} : { percent: p }) });
        await recordTaskEvent(deps, row.id, 'step', name, p === undefined ? {} : { percent: p });
        // a cancel asked through another server reaches this runner at its next step
        if ((await getTask(deps.db, row.id))?.state === 'cancelling') controller.abort();
      }),
    child: (name, progress) =>
      serial(async () => {
        const p: ChildProgress = { state: progress.state, percent: clampPercent(progress.percent ?? children[name]?.percent ?? 0) };
        if (progress.error !== undefined) p.error = progress.error;
        children[name] = p;
        await updateTask(deps.db, row.id, { progress_json: JSON.stringify(children) });
        await recordTaskEvent(deps, row.id, 'child', `${name}: ${p.state}`, { name, ...p });
      }),
    event: (kind, message, data) => serial(() => recordTaskEvent(deps, row.id, kind, message, data)),
  };
}

/**
 * Runs a task to its end in this process: queued → running, the runner, then succeeded (with its result), failed
 * (with its error's code and message) or cancelled. Never throws: what goes wrong is the task's last error.
 */
export async function driveTask(deps: TaskDeps, row: TaskRow, runner: TaskRunner, resume: boolean): Promise<void> {
  const actor = await actorFor('task');
  const controller = new AbortController();
  let finished!: () => void;
  const done = new Promise<void>((resolve) => (finished = resolve));
  running.set(row.id, { controller, done });
  try {
    if (row.state === 'queued') {
      // its turn in its pool's queue first; cancelled meanwhile (here or by another process): nothing to run
      const turn = await waitForTurn(deps.db, row, controller.signal).catch((err: unknown) => {
        if (controller.signal.aborted) return false;
        throw err;
      });
      if (!turn) return;
      if ((await settle(deps, row.id, 'running', actor)) !== 'running') return;
    }
    if (row.state === 'cancelling') controller.abort();
    let result: Record<string, unknown> | void;
    try {
      result = await runner(context(deps, { ...row, state: 'running' }, controller, resume));
    } catch (err) {
      const e = toVmforkError(err);
      if (controller.signal.aborted) {
        await settle(deps, row.id, 'cancelled', actor);
      } else {
        deps.log.error({ task: row.id, kind: row.kind, err }, 'task failed');
        await settle(deps, row.id, 'failed', actor, { last_error: JSON.stringify({ code: e.code, message: e.message }) });
      }
      return;
    }
    await settle(deps, row.id, 'succeeded', actor, { percent: 100, result_json: JSON.stringify(redactSecrets(result ?? {})) });
  } catch (err) {
    // the store itself failed: the task stays live with this process as its owner; the next server start resumes it
    deps.log.error({ task: row.id, err }, 'task engine could not record the end of a task');
  } finally {
    running.delete(row.id);
    finished();
  }
}

/**
 * Records a task (queued, owned by this process) and runs `runner` in the background: the id comes back at once
 * (an API answers 202 with it); progress, events and the end are read from the task.
 */
export async function startTask(deps: TaskDeps, request: TaskRequest, runner: TaskRunner): Promise<string> {
  if (!request.kind || !request.target) throw new VmforkError('VMFORK_INTERNAL', 'a task needs a kind and a target');
  const id = randomUUID();
  const now = new Date().toISOString();
  const row: TaskRow = {
    id,
    kind: request.kind,
    target: request.target,
    state: 'queued',
    step: null,
    percent: 0,
    progress_json: '{}',
    input_json: JSON.stringify(redactSecrets(request.input ?? {})),
    result_json: null,
    last_error: null,
    host_id: LOCAL_HOST_ID,
    queue: request.queue ?? null,
    lock: request.queue ? (request.lock ?? 'pool') : null,
    queued_behind: null,
    created_at: now,
    updated_at: now,
    owner_pid: null,
    owner_start_time: null,
    owner_op: null,
    owner_boot: null,
  };
  const { owner_pid: _p, owner_start_time: _s, owner_op: _o, owner_boot: _b, ...fields } = row;
  await insertTask(deps.db, fields, await actorFor('task'));
  const blocker = await blockerOf(deps.db, row);
  if (blocker) {
    row.queued_behind = blocker.id;
    await setQueuedBehind(deps.db, id, blocker.id);
  }
  await recordTaskEvent(deps, id, 'state', blocker ? `queued behind task ${blocker.id} (${blocker.kind} ${blocker.target})` : 'queued', {
    state: 'queued',
    ...(blocker ? { queuedBehind: blocker.id } : {}),
  });
  void driveTask(deps, row, runner, false);
  return id;
}

/** What a queued request answers with (the API's 202): its task, and the one it waits behind when there is one. */
export interface Enqueued {
  taskId: string;
  state: 'queued' | 'running';
  queuedBehind: string | null;
}

/** startTask, answering with the task's place: `queuedBehind` names the operation it waits for. */
export async function enqueueTask(deps: TaskDeps, request: TaskRequest, runner: TaskRunner): Promise<Enqueued> {
  const taskId = await startTask(deps, request, runner);
  const row = await requireTask(deps.db, taskId);
  return { taskId, state: row.state === 'running' ? 'running' : 'queued', queuedBehind: row.queued_behind };
}

/**
 * Asks a task to stop: a queued one is cancelled at once; a running one becomes `cancelling` and its runner (if
 * this process runs it) is signalled. An ended task is VMFORK_TASK_STATE.
 */
export async function cancelTask(deps: TaskDeps, id: string): Promise<TaskState> {
  const actor = await actorFor('task');
  for (let attempt = 0; ; attempt++) {
    const row = await requireTask(deps.db, id);
    if (row.state === 'cancelling') return row.state;
    if (row.state !== 'queued' && row.state !== 'running') {
      throw new VmforkError('VMFORK_TASK_STATE', `task ${id} already ended (${row.state}); nothing to cancel`, { details: { task: id, state: row.state } });
    }
    const to = row.state === 'queued' ? 'cancelled' : 'cancelling';
    try {
      await transition(deps.db, 'tasks', id, row.state, to, actor);
    } catch (err) {
      // it started (or ended) between our read and our write: look again
      if (isVmforkError(err) && err.code === 'VMFORK_TASK_STATE' && attempt < 3) continue;
      throw err;
    }
    await recordTaskEvent(deps, id, 'state', to, { state: to });
    running.get(id)?.controller.abort();
    return to;
  }
}

/** Waits (up to `timeoutMs`) for the tasks this process runs; false when some still run then. */
export async function drainTasks(timeoutMs: number): Promise<boolean> {
  const all = Promise.all([...running.values()].map((t) => t.done)).then(() => true);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
  try {
    return await Promise.race([all, late]);
  } finally {
    clearTimeout(timer);
  }
}
