import { liveQueueTasks, requireTask, type Db, type TaskRow } from '../store/index.js';
import { waitUntil } from '../util/index.js';

/**
 * Per-pool queues (issue 11; Proxmox's per-guest lock, visible in the API). A task that names a `queue` runs only
 * when no earlier live task of that queue holds a lock that conflicts with its own:
 * - `pool` conflicts with everything: create, resize, converge and rm of one pool run one at a time, in order;
 * - `vm:<name>` conflicts with `pool` and with the same VM: power operations on two VMs of one pool run together.
 * The order is the tasks table's insertion order, so every process sharing the data dir agrees on it, and a task
 * recovered after a crash keeps its place.
 */
export const POOL_LOCK = 'pool';

export function vmLock(vm: string): string {
  return `vm:${vm}`;
}

function conflicts(a: string | null, b: string | null): boolean {
  if (a === null || b === null || a === POOL_LOCK || b === POOL_LOCK) return true;
  return a === b;
}

/** The latest earlier live task of `task`'s queue that it must wait for, or undefined when it may run now. */
export async function blockerOf(db: Db, task: Pick<TaskRow, 'id' | 'queue' | 'lock'>): Promise<TaskRow | undefined> {
  if (!task.queue) return undefined;
  const live = await liveQueueTasks(db, task.queue);
  const mine = live.findIndex((t) => t.id === task.id);
  const earlier = mine < 0 ? live : live.slice(0, mine);
  return earlier.filter((t) => conflicts(t.lock, task.lock)).pop();
}

/** How long a task may wait in its queue (behind a create that runs phase 1 under TCG, say) before it fails. */
export const QUEUE_WAIT_MS = 24 * 3600_000;

/**
 * Resolves when `task` may run; false when it stopped being queued meanwhile (cancelled, by this process or
 * another). Throws the signal's reason when this process cancels it.
 */
export async function waitForTurn(db: Db, task: Pick<TaskRow, 'id' | 'queue' | 'lock'>, signal: AbortSignal): Promise<boolean> {
  if (!task.queue) return true;
  return waitUntil(
    async () => {
      if ((await requireTask(db, task.id)).state !== 'queued') return 'gone' as const;
      return (await blockerOf(db, task)) ? undefined : ('turn' as const);
    },
    { deadlineMs: QUEUE_WAIT_MS, everyMs: 250, signal, what: `task ${task.id}'s turn in queue ${task.queue}` },
  ).then((r) => r === 'turn');
}
