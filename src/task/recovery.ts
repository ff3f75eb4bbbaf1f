import { actorFor } from '../host/index.js';
import { requireTask, takeOver, transition, transitionalRows } from '../store/index.js';
import { driveTask, recordTaskEvent } from './engine.js';
import type { TaskDeps, TaskRunners } from './types.js';
import { taskOwnerAlive } from './owner-lock.js';

/** One task found left live by a server that died, and what was done with it. */
export interface RecoveredTask {
  id: string;
  kind: string;
  target: string;
  /** The state it was left in. */
  state: string;
  deadOwnerPid: number | null;
  /** `resumed`: run again by its kind's runner in resume mode; `failed`: no runner for its kind here. */
  action: 'resumed' | 'failed';
}

/**
 * At server start: every task left queued, running or cancelling by a process that is gone is taken over (a
 * compare-and-set on the dead owner, so of two servers starting at once exactly one gets it) and run again by its
 * kind's runner in resume mode — runners are idempotent, so they finish or roll back what the dead one left. A task
 * whose kind has no runner here fails with VMFORK_NOT_SUPPORTED. Tasks of live owners are theirs and left alone.
 */
export async function recoverTasks(deps: TaskDeps, runners: TaskRunners): Promise<RecoveredTask[]> {
  const out: RecoveredTask[] = [];
  const actor = await actorFor('task');
  for (const left of await transitionalRows(deps.db, 'tasks')) {
    if (await taskOwnerAlive(deps.db, { pid: left.owner_pid, startTime: left.owner_start_time, boot: left.owner_boot })) continue;
    if (!(await takeOver(deps.db, 'tasks', left.name, left.state, left, actor))) continue;
    const row = await requireTask(deps.db, left.name);
    const base = { id: row.id, kind: row.kind, target: row.target, state: left.state, deadOwnerPid: left.owner_pid };
    const runner = runners[row.kind];
    const who = left.owner_pid === null ? 'its server' : `server pid ${left.owner_pid}`;
    if (!runner) {
      const error = { code: 'VMFORK_NOT_SUPPORTED', message: `no runner for tasks of kind "${row.kind}" in this server` };
      await transition(deps.db, 'tasks', row.id, left.state, 'failed', actor, { last_error: JSON.stringify(error) });
      await recordTaskEvent(deps, row.id, 'state', 'failed', { state: 'failed', error });
      deps.log.warn(base, 'interrupted task failed: no runner for its kind');
      out.push({ ...base, action: 'failed' });
      continue;
    }
    await recordTaskEvent(deps, row.id, 'recovered', `${who} died while the task was ${left.state}; resumed by pid ${process.pid}`, { deadOwnerPid: left.owner_pid });
    deps.log.warn(base, 'resuming a task left by a server that died');
    void driveTask(deps, row, runner, true);
    out.push({ ...base, action: 'resumed' });
  }
  return out;
}
