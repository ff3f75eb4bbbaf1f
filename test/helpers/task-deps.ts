import type { TaskDeps } from '../../src/task/index.js';
import { createLogger } from '../../src/util/index.js';
import { openTestStore } from './store.js';

/** Runs `fn` with a fresh in-memory store and a quiet logger: what the task engine needs, and nothing else. */
export async function withTaskDeps(fn: (deps: TaskDeps) => Promise<void>): Promise<void> {
  const db = await openTestStore();
  try {
    await fn({ db, log: createLogger(undefined) });
  } finally {
    await db.destroy();
  }
}
