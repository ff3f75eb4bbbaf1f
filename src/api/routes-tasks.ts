import { z } from 'zod';
import { cancelTask, followTask, getTaskView, listTaskViews, TaskViewSchema, type TaskDeps } from '../task/index.js';
import { defineRoute, type AnyRoute } from './route.js';

const IdParams = z.strictObject({ id: z.string().min(1).max(64) });
const HEARTBEAT_MS = 15_000;

/** Tasks: list, one, cancel, and their events as server-sent events (the replay, then live, until the task ends). */
export function taskRoutes(deps: TaskDeps): AnyRoute[] {
  return [
    defineRoute({
      method: 'GET', path: '/v1/tasks', operationId: 'listTasks', tag: 'tasks', summary: 'Tasks, newest first',
      query: z.strictObject({
        state: TaskViewSchema.shape.state.optional(),
        kind: z.string().optional(),
        target: z.string().optional().describe('a pool or VM name'),
        limit: z.coerce.number().int().min(1).max(1000).optional(),
      }),
      status: 200, response: z.array(TaskViewSchema), responseName: 'TaskList',
      handler: ({ query }) => listTaskViews(deps, query),
    }),
    defineRoute({
      method: 'GET', path: '/v1/tasks/{id}', operationId: 'getTask', tag: 'tasks', summary: 'One task: state, step, percent, per-child progress, last error',
      params: IdParams, status: 200, response: TaskViewSchema, responseName: 'Task', errors: [404],
      handler: ({ params }) => getTaskView(deps, params.id),
    }),
    defineRoute({
      method: 'POST', path: '/v1/tasks/{id}/cancel', operationId: 'cancelTask', tag: 'tasks', summary: 'Ask a task to stop: its runner rolls back, the task ends cancelled',
      params: IdParams, status: 202, response: TaskViewSchema, responseName: 'Task', errors: [404, 409],
      handler: async ({ params }) => {
        await cancelTask(deps, params.id);
        return getTaskView(deps, params.id);
      },
    }),
    defineRoute({
      method: 'GET', path: '/v1/tasks/{id}/events', operationId: 'followTask', tag: 'tasks',
      summary: 'The task\'s events as server-sent events: every recorded one, then each new one, until the task ends (resume with Last-Event-ID or ?after=)',
      params: IdParams, query: z.strictObject({ after: z.coerce.number().int().min(0).optional().describe('only events numbered above this') }),
      status: 200, response: 'event-stream', errors: [404],
      handler: async ({ params, query }, req, reply) => {
        await getTaskView(deps, params.id); // a 404 is still a JSON answer: checked before the stream starts
        const lastEventId = Number(req.headers['last-event-id']);
        const after = Number.isSafeInteger(lastEventId) && lastEventId > 0 ? lastEventId : (query.after ?? 0);
        reply.hijack();
        const res = reply.raw;
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
        const gone = new AbortController();
        req.raw.on('close', () => gone.abort());
        // a comment line now and then keeps proxies and idle timeouts from closing a quiet stream
        const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
        try {
          await followTask(deps, params.id, (e) => void res.write(`id: ${e.seq}\nevent: ${e.kind}\ndata: ${JSON.stringify(e)}\n\n`), { after, signal: gone.signal });
        } catch (err) {
          req.log.error({ err, task: params.id }, 'event stream failed');
        } finally {
          clearInterval(heartbeat);
          res.end();
        }
      },
    }),
  ];
}
