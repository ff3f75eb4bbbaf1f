import { z } from 'zod';
import type { TaskEventRow, TaskRow } from '../store/index.js';

/** A task as the API and `vmfork task` show it (a contract: docs/tasks.md). Also the OpenAPI schema. */
export const ChildProgressSchema = z.object({
  state: z.string(),
  percent: z.number().int().min(0).max(100),
  error: z.string().optional(),
});

export const TaskErrorSchema = z.object({ code: z.string(), message: z.string() });

export const TaskViewSchema = z.object({
  id: z.string(),
  kind: z.string(),
  target: z.string(),
  state: z.enum(['queued', 'running', 'cancelling', 'succeeded', 'failed', 'cancelled']),
  step: z.string().nullable(),
  percent: z.number().int().min(0).max(100),
  children: z.record(z.string(), ChildProgressSchema),
  input: z.record(z.string(), z.unknown()),
  result: z.record(z.string(), z.unknown()).nullable(),
  lastError: TaskErrorSchema.nullable(),
  hostId: z.string(),
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
    owner: row.owner_pid === null ? null : { pid: row.owner_pid },
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export function taskEventView(row: TaskEventRow): TaskEvent {
  return { taskId: row.task_id, seq: row.seq, at: row.at, kind: row.kind, message: row.message, data: parseObject(row.data_json) };
}

/** 202: the operation runs as a task; follow it with GET /v1/tasks/{taskId}. */
export const TaskAcceptedSchema = z.object({ taskId: z.string(), pool: z.string().optional(), vm: z.string().optional() });
export type TaskAccepted = z.infer<typeof TaskAcceptedSchema>;
