import { liveQueueTasks, listTasks, type Db, type TaskRow } from '../store/index.js';
import type { PoolTask } from './views.js';

/**
 * The task a pool's page shows with its progress: the one running in the pool's queue (every pool operation,
 * claim and power operation runs there), else the next one waiting, else the newest that ended. Not the pool row's
 * `task_id`, which only create, resize and remove set: a claim's fork or a release's refresh is work on the pool
 * too, and the page must show it.
 */
export async function lastPoolTask(db: Db, pool: string): Promise<PoolTask | null> {
  const live = await liveQueueTasks(db, pool);
  const row: TaskRow | undefined = live.find((t) => t.state !== 'queued') ?? live[0] ?? (await listTasks(db, { queue: pool, limit: 1 }))[0];
  return row ? { id: row.id, kind: row.kind, state: row.state, percent: row.percent, step: row.step } : null;
}
