import { z } from 'zod';
import { labelSchema } from '../pool/index.js';
import type { VmDeps } from '../vm/index.js';
import type { ProvisionService } from './provision-service.js';
import { defineRoute, type AnyRoute } from './route.js';
import { engine } from './routes-provision.js';
import { sessionIsLive, type Session } from './session.js';
import { readViews, ViewPoller, type Views } from './view-poller.js';

/** How often a stream looks for a change: a change reaches the page at most this late. */
export const EVENTS_POLL_MS = 1000;
const HEARTBEAT_MS = 15_000;

/**
 * Live views for the web console: the pool list (and one pool) as server-sent events, sent at connect and again
 * whenever their JSON changes. One ViewPoller per server reads the views once a second for all its streams, and each
 * stream sends what differs from what it sent last.
 * Not by NOTIFY alone: a CLI process on the same data dir (SQLite, no NOTIFY) changes pools too, and a view also
 * changes with no task event (a claim's TTL, a VM found dead), so only looking again sees every change.
 */
export function eventRoutes(deps: VmDeps, provision: ProvisionService | undefined): AnyRoute[] {
  const poller = new ViewPoller<Session>({ provision: () => engine(provision), sessionIsLive: (s) => sessionIsLive(deps.db, s), sessionKey: (s) => s.idHash, everyMs: EVENTS_POLL_MS, log: deps.log });
  return [
    defineRoute({
      method: 'GET', path: '/v1/events', operationId: 'followPools', tag: 'pools',
      summary: 'Live pool views as server-sent events: sent at connect, then whenever they change (checked each second)',
      query: z.strictObject({ pool: labelSchema.optional().describe('also send this pool\'s detail (event `pool`)') }),
      status: 200, response: 'event-stream', errors: [404, 501],
      events:
        'Server-sent events: `event: pools` with `data` = what GET /v1/pools answers (PoolList, JSON); with ?pool= also `event: pool` with `data` = what ' +
        'GET /v1/pools/{name} answers (PoolDetail, or the Error body once the pool is removed). Each is sent at connect and again when its content changes.',
      handler: async ({ query }, req, reply) => {
        const service = engine(provision);
        // a missing pool or engine is still a JSON answer: found before the stream starts
        const first = await readViews(service, query.pool, true);
        reply.hijack();
        const res = reply.raw;
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
        const sent = new Map<string, string>();
        const send = (views: Views): void => {
          for (const [event, data] of views) {
            if (sent.get(event) === data) continue;
            sent.set(event, data);
            res.write(`event: ${event}\ndata: ${data}\n\n`);
          }
        };
        // a comment line now and then keeps proxies and idle timeouts from closing a quiet stream
        const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
        send(first);
        // a logout ends the streams its session opened: the cookie it was opened with is no longer good
        const unsubscribe = poller.subscribe(query.pool, req.vmforkSession ?? undefined, (views, live) => (live ? send(views) : end()));
        function end(): void {
          unsubscribe();
          clearInterval(heartbeat);
          res.end();
        }
        req.raw.on('close', end);
        // the viewer may have gone while the first views were read: its 'close' was before the listener
        if (req.raw.destroyed) end();
      },
    }),
  ];
}
