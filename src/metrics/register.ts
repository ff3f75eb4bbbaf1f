import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { VmDeps } from '../vm/index.js';
import { defineMetrics, type VmforkMetrics } from './definitions.js';
import { collectHostGauges } from './host-gauges.js';
import { collectPoolGauges } from './pool-gauges.js';
import { scrapeRefusal, type SessionCheck } from './scrape-auth.js';
import { StoreHistograms } from './store-histograms.js';

export interface MetricsOptions {
  deps: VmDeps;
  /** The API token: whoever holds it may scrape too. */
  token: string;
  /** The scrape token (`<home>/metrics-token`, ensureMetricsToken); absent: the API token and sessions only. */
  scrapeToken?: string | undefined;
  /** Whether a request carries a valid console session (see SessionCheck); absent: bearer tokens only. */
  sessionValid?: SessionCheck | undefined;
}

/** The claim route (api/routes-claims.ts) as Fastify names it: each answer is timed into vmfork_claim_seconds. */
const CLAIM_ROUTE = '/v1/pools/:name/claim';

/**
 * Serves `GET /metrics` (Prometheus text, docs/metrics.md) on `app`. The route is public to the API's bearer hook
 * (`auth: false`) and checks its own callers: the API token, the scrape token or a console session. What the store
 * holds is read at each scrape, so every server and agent on the store is counted, not only this process; claims
 * are timed here, as this process answers them.
 */
export function registerMetrics(app: FastifyInstance, options: MetricsOptions): void {
  const m = defineMetrics();
  const histograms = new StoreHistograms(options.deps.db, m);
  const tokens = [options.token, ...(options.scrapeToken ? [options.scrapeToken] : [])];

  // one collection at a time: two scrapes at once must not interleave one's reset with the other's values
  let queue: Promise<unknown> = Promise.resolve();
  const scrape = (): Promise<string> => {
    const next = queue.then(async () => {
      await Promise.all([collectPoolGauges(options.deps.db, m), collectHostGauges(options.deps, m), histograms.collect()]);
      return m.registry.metrics();
    });
    queue = next.catch(() => undefined);
    return next;
  };

  app.addHook('onResponse', async (req, reply) => observeClaim(m, req, reply));

  app.get('/metrics', { config: { auth: false } }, async (req, reply) => {
    const refused = await scrapeRefusal(req, tokens, options.sessionValid);
    if (refused) {
      if (refused.status === 401) void reply.header('www-authenticate', 'Bearer');
      // answered here, not thrown: the same body on an app without the API's error handler
      return reply.status(refused.status).send({ error: refused.toJSON() });
    }
    const body = await scrape();
    return reply.header('content-type', m.registry.contentType).send(body);
  });
}

/**
 * A claim's answer, timed from its request to its response. Only answers about an existing pool are counted (a
 * claim, a refusal of the pool's, a failure): a 401 or 404 would let anyone add a series per made-up pool name.
 */
function observeClaim(m: VmforkMetrics, req: FastifyRequest, reply: FastifyReply): void {
  if (req.method !== 'POST' || req.routeOptions.url !== CLAIM_ROUTE) return;
  const status = reply.statusCode;
  const outcome = status === 200 ? 'claimed' : status === 409 ? 'refused' : status >= 500 && status !== 501 ? 'failed' : undefined;
  const pool = (req.params as { name?: unknown }).name;
  if (outcome && typeof pool === 'string') m.claim.observe({ pool, outcome }, reply.elapsedTime / 1000);
}
