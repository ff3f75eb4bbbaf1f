import { sql } from 'kysely';
import { VmforkError } from '../errors.js';
import type { Actor, TaskState } from '../state/index.js';
import { isUniqueViolation, type Db } from './db.js';
import type { NewTask, TaskEventRow, TaskRow, TaskUpdate } from './schema.js';
import { ownerColumns } from './transition.js';

export async function getTask(db: Db, id: string): Promise<TaskRow | undefined> {
  return db.selectFrom('tasks').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function requireTask(db: Db, id: string): Promise<TaskRow> {
  const row = await getTask(db, id);
  if (!row) throw new VmforkError('VMFORK_TASK_NOT_FOUND', `no task with id "${id}" (see: vmfork task list)`, { details: { task: id } });
  return row;
}

export interface TaskFilter {
  kind?: string | undefined;
  queue?: string | undefined;
  target?: string | undefined;
  state?: TaskState | undefined;
  /** At most this many, newest first. */
  limit?: number | undefined;
}

/** Tasks, newest first. */
export async function listTasks(db: Db, filter: TaskFilter = {}): Promise<TaskRow[]> {
  let q = db.selectFrom('tasks').selectAll();
  if (filter.kind) q = q.where('kind', '=', filter.kind);
  if (filter.queue) q = q.where('queue', '=', filter.queue);
  if (filter.target) q = q.where('target', '=', filter.target);
  if (filter.state) q = q.where('state', '=', filter.state);
  return q.orderBy('created_at', 'desc').orderBy('id').limit(filter.limit ?? 100).execute();
}

/** Inserts a task in its first state, owned by the actor while that state is transitional. */
export async function insertTask(db: Db, task: Omit<NewTask, 'owner_pid' | 'owner_start_time' | 'owner_op' | 'owner_boot'>, actor: Actor): Promise<void> {
  await db
    .insertInto('tasks')
    .values({ ...task, ...ownerColumns('tasks', task.state, actor) })
    .execute();
}

/** Writes progress columns (never the state or its owner: those change only through `transition`). */
export async function updateTask(
  db: Db,
  id: string,
  update: Pick<TaskUpdate, 'step' | 'percent' | 'progress_json' | 'result_json' | 'last_error'>,
): Promise<void> {
  await db
    .updateTable('tasks')
    .set({ ...update, updated_at: new Date().toISOString() })
    .where('id', '=', id)
    .execute();
}

/**
 * Appends an event and returns it with its number. The number is taken as max + 1 inside the INSERT itself: one
 * statement, so SQLite's write lock makes it atomic even when two writers append to one task. PostgreSQL lets two
 * such statements read the same max; the second then breaks the (task_id, seq) key and is tried again with the
 * next number.
 */
export async function appendTaskEvent(db: Db, taskId: string, event: { kind: string; message: string; data_json: string | null }): Promise<TaskEventRow> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await insertNextEvent(db, taskId, event);
    } catch (err) {
      if (!isUniqueViolation(err) || attempt >= 20) throw err;
    }
  }
}

async function insertNextEvent(db: Db, taskId: string, event: { kind: string; message: string; data_json: string | null }): Promise<TaskEventRow> {
  const at = new Date().toISOString();
  return db
    .insertInto('task_events')
    .columns(['task_id', 'seq', 'at', 'kind', 'message', 'data_json'])
    .expression((eb) =>
      eb
        .selectFrom('task_events')
        .select([
          eb.val(taskId).as('task_id'),
          sql<number>`coalesce(max(seq), 0) + 1`.as('seq'),
          eb.val(at).as('at'),
          eb.val(event.kind).as('kind'),
          eb.val(event.message).as('message'),
          eb.val(event.data_json).as('data_json'),
        ])
        .where('task_id', '=', taskId),
    )
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** A task's events with a number above `afterSeq`, in order. */
export async function listTaskEvents(db: Db, taskId: string, afterSeq = 0): Promise<TaskEventRow[]> {
  return db.selectFrom('task_events').selectAll().where('task_id', '=', taskId).where('seq', '>', afterSeq).orderBy('seq').execute();
}

/** A task of a queue with its place in it (the insertion order, which every process sharing the file agrees on). */
export type QueuedTaskRow = TaskRow & { place: number };

/** The live (queued, running, cancelling) tasks of a queue, in the order they were made. */
export async function liveQueueTasks(db: Db, queue: string): Promise<QueuedTaskRow[]> {
  return db
    .selectFrom('tasks')
    .selectAll()
    .select(sql<number>`rowid`.as('place'))
    .where('queue', '=', queue)
    .where('state', 'in', ['queued', 'running', 'cancelling'])
    .orderBy(sql`rowid`)
    .execute();
}

/** Records which task a queued one waits behind (informational: the queue itself is the order of the rows). */
export async function setQueuedBehind(db: Db, id: string, behind: string | null): Promise<void> {
  await db.updateTable('tasks').set({ queued_behind: behind }).where('id', '=', id).execute();
}
