import { TASK_FINAL_STATES } from '../state/index.js';
import { listTaskEvents, listTasks, requireTask, type TaskFilter } from '../store/index.js';
import { waitUntil } from '../util/index.js';
import { onTaskNotify, running } from './bus.js';

/** How long one follower follows one task. */
const FOLLOW_DEADLINE_MS = 24 * 3600_000;
import type { TaskDeps } from './types.js';
import { taskEventView, taskView, type TaskEvent, type TaskView } from './views.js';

export async function getTaskView(deps: TaskDeps, id: string): Promise<TaskView> {
  return taskView(await requireTask(deps.db, id));
}

export async function listTaskViews(deps: TaskDeps, filter: TaskFilter = {}): Promise<TaskView[]> {
  return (await listTasks(deps.db, filter)).map(taskView);
}

export interface FollowOptions {
  /** Only events numbered above this (a reconnecting client's Last-Event-ID). @default 0 */
  after?: number;
  /** Stops following (a client that went away). */
  signal?: AbortSignal;
  /** How often to look at the table when no wake-up came (a task another process runs). @default 1000 */
  pollMs?: number;
}

/**
 * Delivers a task's events in order: every recorded one first (replay), then each new one as it is recorded
 * (live), and resolves once the task has ended and its last event was delivered. Events are always read from the
 * table: a wake-up from this process's runners only says when to read, and a slow poll covers runners elsewhere.
 */
export async function followTask(deps: TaskDeps, id: string, onEvent: (e: TaskEvent) => void | Promise<void>, options: FollowOptions = {}): Promise<void> {
  await requireTask(deps.db, id);
  let last = options.after ?? 0;
  let wake: (() => void) | undefined;
  const unsubscribe = onTaskNotify(id, () => wake?.());
  const onAbort = (): void => wake?.();
  options.signal?.addEventListener('abort', onAbort);
  let ended = false;
  let endedInTable = 0;
  const deliver = async (): Promise<void> => {
    for (const row of await listTaskEvents(deps.db, id, last)) {
      last = row.seq;
      const event = taskEventView(row);
      if (event.kind === 'state' && TASK_FINAL_STATES.includes(event.data?.state as TaskView['state'])) ended = true;
      await onEvent(event);
    }
  };
  try {
    // a follower may watch a task for as long as the task runs (phase 1 under TCG is minutes); a day bounds it
    await waitUntil(
      async () => {
        // subscribed before reading: an event recorded between the read and the wait still wakes us
        const woken = new Promise<void>((resolve) => (wake = resolve));
        await deliver();
        if (ended || options.signal?.aborted) return true;
        // the final state is written just before its event; a writer that died in between leaves no event, so a
        // task found ended twice in a row (a poll apart) without one is over too
        const task = await requireTask(deps.db, id);
        endedInTable = TASK_FINAL_STATES.includes(task.state) && !running.has(id) ? endedInTable + 1 : 0;
        if (endedInTable >= 2) return true;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([woken, new Promise<void>((resolve) => (timer = setTimeout(resolve, endedInTable ? 50 : (options.pollMs ?? 1000))))]);
        clearTimeout(timer);
        return undefined;
      },
      { deadlineMs: FOLLOW_DEADLINE_MS, everyMs: 0, what: `task ${id} to end` },
    );
  } finally {
    unsubscribe();
    options.signal?.removeEventListener('abort', onAbort);
  }
}

/** Resolves with the task once it has ended (tests, `--wait`). */
export async function waitForTask(deps: TaskDeps, id: string, options: { signal?: AbortSignal } = {}): Promise<TaskView> {
  await followTask(deps, id, () => undefined, { ...options, pollMs: 200 });
  return getTaskView(deps, id);
}
