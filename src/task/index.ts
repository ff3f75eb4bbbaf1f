/**
 * Tasks: long operations run in the background with progress, events, cancel and recovery after a crash, in
 * per-pool queues (docs/tasks.md). The engine knows nothing of pools: runners are registered by kind.
 */
export { cancelTask, drainTasks, enqueueTask, startTask, type Enqueued } from './engine.js';
export { vmLock } from './queue.js';
export { listenForTaskEvents } from './bus.js';
export { followTask, getTaskView, listTaskViews, waitForTask } from './follow.js';
export { recoverTasks, type RecoveredTask } from './recovery.js';
export { holdServerLock, taskOwnerAlive } from './owner-lock.js';
export type { TaskContext, TaskDeps, TaskRunners } from './types.js';
export { TaskAcceptedSchema, TaskEventSchema, TaskViewSchema, type TaskAccepted, type TaskEvent, type TaskView } from './views.js';
