import { defineStateMachine } from './machine.js';

/**
 * Life of a task (one pool operation run in the background, docs/tasks.md):
 * - `queued`: recorded and owned by the server that accepted it; its runner has not started yet.
 * - `running`: its runner works through its steps; progress and events are written as it goes.
 * - `cancelling`: a user asked to stop it; its runner was signalled and rolls back what it must.
 * - `succeeded`, `failed` (`last_error` says why), `cancelled`: ended; nothing moves a task out of these.
 *
 * queued, running and cancelling are transitional: they carry their owner (the server process), and a server that
 * starts finds those whose owner died and runs them again in resume mode (runners are idempotent).
 */
export const TASK_STATES = ['queued', 'running', 'cancelling', 'succeeded', 'failed', 'cancelled'] as const;
export type TaskState = (typeof TASK_STATES)[number];

export const taskStateMachine = defineStateMachine<TaskState>({
  resource: 'task',
  errorCode: 'VMFORK_TASK_STATE',
  table: {
    queued: ['running', 'cancelled', 'failed'],
    running: ['succeeded', 'failed', 'cancelling'],
    // a runner that finished its last step before it saw the signal still succeeded
    cancelling: ['cancelled', 'failed', 'succeeded'],
    succeeded: [],
    failed: [],
    cancelled: [],
  },
  transitional: ['queued', 'running', 'cancelling'],
});

/** States a task ends in: a follower of its events stops when it reaches one. */
export const TASK_FINAL_STATES: readonly TaskState[] = ['succeeded', 'failed', 'cancelled'];

/**
 * What a task says of each child it works on (`children[name].state`; not a table of its own: a child's record has
 * its VM state, this is the task's view of its part in it). Converge writes queued → forking → running | failed |
 * skipped, registered, removed; a power task writes the VM's outcome: running, stopped, registered, destroyed.
 */
export const CHILD_PROGRESS_STATES = ['queued', 'forking', 'running', 'registered', 'warm', 'stopped', 'skipped', 'failed', 'removed', 'destroyed'] as const;
export type ChildProgressState = (typeof CHILD_PROGRESS_STATES)[number];
