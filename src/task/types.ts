import type { ChildProgressState } from '../state/index.js';
import type { Db } from '../store/index.js';
import type { Logger } from '../util/index.js';

/** What the task engine needs from its caller (the API server, a test). */
export interface TaskDeps {
  db: Db;
  log: Logger;
}

/** A pool operation to run in the background. `input` is stored (redacted) so the task can run again after a crash. */
export interface TaskRequest {
  /** What it does: `pool-create`, `pool-resize`, `pool-remove`, `vm-power-on`, …; recovery finds its runner by it. */
  kind: string;
  /** The resource it acts on (a pool or VM name). */
  target: string;
  input?: Record<string, unknown>;
  /** The queue it runs in (a pool's name): see queue.ts. Without one it runs at once. */
  queue?: string;
  /** Its lock in the queue: `pool` (the default: alone) or `vm:<name>` (vmLock). */
  lock?: string;
}

/** One child's progress within a task. */
export interface ChildProgress {
  state: ChildProgressState;
  /** 0–100. */
  percent: number;
  error?: string;
}

/** What a runner is handed: its task, and the only ways it reports progress. */
export interface TaskContext {
  readonly id: string;
  readonly kind: string;
  readonly target: string;
  readonly input: Record<string, unknown>;
  /**
   * True when the task is run again because the server that ran it died: the runner must find what was already
   * done and finish or roll it back (every runner is idempotent).
   */
  readonly resume: boolean;
  /** Aborted when a user cancels the task: the runner rolls back what it must, then throws (e.g. `signal.throwIfAborted()`). */
  readonly signal: AbortSignal;
  /** Enters a step (`phase 1`, `replica`, `children`) and sets the task's overall percent (0–100). */
  step(name: string, percent?: number): Promise<void>;
  /** Sets one child's progress (per-child progress bars read it). */
  child(name: string, progress: { state: ChildProgressState; percent?: number; error?: string }): Promise<void>;
  /** Appends an event (never a secret: fields named like password/secret/token are redacted anyway). */
  event(kind: string, message: string, data?: Record<string, unknown>): Promise<void>;
}

/**
 * Runs one kind of task. Resolves with the task's result (stored as JSON) or throws: a VmforkError's code and
 * message become the task's last error; a throw after the signal was aborted ends the task `cancelled`.
 */
export type TaskRunner = (ctx: TaskContext) => Promise<Record<string, unknown> | void>;

/** Runners by task kind, as the server registers them for recovery. */
export type TaskRunners = Readonly<Record<string, TaskRunner>>;
