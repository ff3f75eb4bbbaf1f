import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { isVmforkError } from '../errors.js';
import { labelSchema } from '../pool/index.js';
import type { VmDeps } from '../vm/index.js';
import type { ProvisionService } from './provision-service.js';
import { defineRoute, type AnyRoute } from './route.js';
import { engine } from './routes-provision.js';
import { sessionIsLive } from './session.js';

/** How often a stream looks for a change: a change reaches the page at most this late. */
export const EVENTS_POLL_MS = 1000;
const HEARTBEAT_MS = 15_000;

/** The events a stream sends, each as the JSON of its view: `pools` always, `pool` when one was asked for. */
async function snapshot(provision: ProvisionService, pool: string | undefined, atConnect: boolean): Promise<[string, string][]> {
  const out: [string, string][] = [['pools', JSON.stringify(await provision.listPools())]];
  if (pool === undefined) return out;
  try {
    out.push(['pool', JSON.stringify(await provision.getPool(pool))]);
  } catch (err) {
    // at connect a missing pool is the route's 404; later (it was removed) the event says so, as GET /v1/pools/{name} would
    if (atConnect || !isVmforkError(err) || err.status !== 404) throw err;
    out.push(['pool', JSON.stringify({ error: err.toJSON() })]);
  }
  return out;
}

/**
 * Live views for the web console: the pool list (and one pool) as server-sent events, sent at connect and again
 * whenever their JSON changes. Each stream compares what it would send now with what it sent last, once a second.
 * Not by NOTIFY alone: a CLI process on the same data dir (SQLite, no NOTIFY) changes pools too, and a view also
 * changes with no task event (a claim's TTL, a VM found dead), so only looking again sees every change.
 */
export function eventRoutes(deps: VmDeps, provision: ProvisionService | undefined): AnyRoute[] {
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
        const first = await snapshot(service, query.pool, true);
        reply.hijack();
        const res = reply.raw;
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
        const sent = new Map<string, string>();
        const send = (views: [string, string][]): void => {
          for (const [event, data] of views) {
            if (sent.get(event) === data) continue;
            sent.set(event, data);
            res.write(`event: ${event}\ndata: ${data}\n\n`);
          }
        };
        const gone = new AbortController();
        req.raw.on('close', () => gone.abort());
        // a comment line now and then keeps proxies and idle timeouts from closing a quiet stream
        const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
        const session = req.vmforkSession;
        try {
          send(first);
          while (!gone.signal.aborted) {
            await sleep(EVENTS_POLL_MS, undefined, { signal: gone.signal }).catch(() => undefined);
            if (gone.signal.aborted) break;
            // a logout ends the streams its session opened: the cookie it was opened with is no longer good
            if (session && !(await sessionIsLive(deps.db, session))) break;
            try {
              send(await snapshot(service, query.pool, false));
            } catch (err) {
              req.log.warn({ err }, 'pool event stream: cannot read the views; trying again');
            }
          }
        } catch (err) {
          req.log.error({ err }, 'pool event stream failed');
        } finally {
          clearInterval(heartbeat);
          res.end();
        }
      },
    }),
  ];
}
