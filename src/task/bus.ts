import { EventEmitter } from 'node:events';
import { listenTaskEvents, type Db, type StoreListener } from '../store/index.js';

/**
 * The in-process side of tasks: which tasks this process runs (to cancel them and to wait for them at shutdown),
 * and a wake-up signal for followers when a task gets a new event. Events themselves are always read from the
 * table, in order, so a follower sees the same sequence whether it replays or listens live. Task ids are random,
 * so one registry serves every store a process opens (tests open several).
 */
export interface RunningTask {
  controller: AbortController;
  done: Promise<void>;
}

export const running = new Map<string, RunningTask>();

const bus = new EventEmitter();
// one listener per follower (an SSE client, a waiting test): no fixed limit makes sense
bus.setMaxListeners(0);

export function notifyTask(id: string): void {
  bus.emit(id);
}

/** Calls `fn` whenever task `id` gets an event; returns the unsubscribe. */
export function onTaskNotify(id: string, fn: () => void): () => void {
  bus.on(id, fn);
  return () => bus.off(id, fn);
}

/**
 * Wakes this process's followers for events recorded by other processes on a shared PostgreSQL store (LISTEN/NOTIFY):
 * what makes a task's live event stream instant from any `vmfork serve`, not only from the one running the task.
 * Undefined on SQLite, where followers' own poll is the only way (and one file is one host).
 */
export function listenForTaskEvents(db: Db): StoreListener | undefined {
  return listenTaskEvents(db, notifyTask);
}
