import { z } from 'zod';
import { CHILD_PROGRESS_STATES, TASK_STATES } from '../state/index.js';
import type { TaskEventRow, TaskRow } from '../store/index.js';

/** A task as the API and `vmfork task` show it (a contract: docs/tasks.md). Also the OpenAPI schema. */
export const ChildProgressSchema = z.object({
  state: z.enum(CHILD_PROGRESS_STATES),
  percent: z.number().int().min(0).max(100),
  error: z.string().optional(),
});

export const TaskErrorSchema = z.object({ code: z.string(), message: z.string() });

export const TaskViewSchema = z.object({
  id: z.string(),
  kind: z.string(),
  target: z.string(),
  state: z.enum(TASK_STATES),
  step: z.string().nullable(),
  percent: z.number().int().min(0).max(100),
  children: z.record(z.string(), ChildProgressSchema),
  input: z.record(z.string(), z.unknown()),
  result: z.record(z.string(), z.unknown()).nullable(),
  lastError: TaskErrorSchema.nullable(),
  hostId: z.string(),
  /** The queue it runs in: its pool's name (operations on one pool run one at a time), or null. */
  queue: z.string().nullable(),
  /** The task it waited behind when it was queued, or null. */
  queuedBehind: z.string().nullable(),
  /** The server process running it while it runs. */
  owner: z.object({ pid: z.number().int() }).nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type TaskView = z.infer<typeof TaskViewSchema>;

export const TaskEventSchema = z.object({
  taskId: z.string(),
  seq: z.number().int().min(1),
  at: z.string(),
  /** `state` (data.state), `step` (data.percent), `child` (data: name, state, percent, error), `recovered`, or a runner's own. */
  kind: z.string(),
  message: z.string(),
  data: z.record(z.string(), z.unknown()).nullable(),
});
export type TaskEvent = z.infer<typeof TaskEventSchema>;

function parseObject(text: string | null): Record<string, unknown> | null {
  return text === null ? null : (JSON.parse(text) as Record<string, unknown>);
}

export function taskView(row: TaskRow): TaskView {
  return {
    id: row.id,
    kind: row.kind,
    target: row.target,
    state: row.state,
    step: row.step,
    percent: row.percent,
    children: JSON.parse(row.progress_json) as TaskView['children'],
    input: JSON.parse(row.input_json) as Record<string, unknown>,
    result: parseObject(row.result_json),
    lastError: parseObject(row.last_error) as TaskView['lastError'],
    hostId: row.host_id,
    queue: row.queue,
    queuedBehind: row.queued_behind,
    owner: row.owner_pid === null ? null : { pid: row.owner_pid },
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export function taskEventView(row: TaskEventRow): TaskEvent {
  return { taskId: row.task_id, seq: row.seq, at: row.at, kind: row.kind, message: row.message, data: parseObject(row.data_json) };
}

/** 202: the operation runs as a task; follow it with GET /v1/tasks/{taskId}. */
export const TaskAcceptedSchema = z.object({
  taskId: z.string(),
  pool: z.string().optional(),
  vm: z.string().optional(),
  /** `queued` while another operation on the same pool runs (then `queuedBehind` names it), or already `running`. */
  state: z.enum(TASK_STATES).extract(['queued', 'running']).optional(),
  queuedBehind: z.string().nullable().optional(),
  /** Earlier queued tasks this request replaced (two resizes: the last wins). */
  supersedes: z.array(z.string()).optional(),
});
export type TaskAccepted = z.infer<typeof TaskAcceptedSchema>;
