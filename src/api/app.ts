import fastifyCookie from '@fastify/cookie';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { invalidSpec } from '../pool/index.js';
import { TaskEventSchema } from '../task/index.js';
import type { VmDeps } from '../vm/index.js';
import { tokenMatches } from './auth.js';
import { frameworkErrorReply, installErrorReplies } from './error-reply.js';
import { buildOpenApi } from './openapi.js';
import type { ProvisionService } from './provision-service.js';
import { defineRoute, registerRoute, type AnyRoute } from './route.js';
import { checkpointRoutes } from './routes-checkpoints.js';
import { promoteRoutes } from './routes-promote.js';
import { claimRoutes } from './routes-claims.js';
import { gcRoutes } from './routes-gc.js';
import { provisionRoutes } from './routes-provision.js';
import { resourceRoutes } from './routes-resources.js';
import { taskRoutes } from './routes-tasks.js';
import { eventRoutes } from './routes-events.js';
import { sessionRoutes } from './routes-session.js';
import { authenticate, sessionCheck } from './session.js';
import { registerMetrics } from '../metrics/index.js';
import { defaultWebRoot, registerConsolePages, registerVmStreams } from '../web/index.js';

export interface AppOptions {
  deps: VmDeps;
  /** The provisioning engine; without it pool, replica and power routes answer 501 VMFORK_NOT_SUPPORTED. */
  provision?: ProvisionService | undefined;
  /** The bearer token every route but the public ones requires (see ensureApiToken); the console trades it for a session. */
  token: string;
  /** The scrape token (`<home>/metrics-token`): it may read GET /metrics and nothing else. */
  metricsToken?: string;
  /** The built console (index.html + assets/). @default `<package>/dist/web` (defaultWebRoot) */
  webRoot?: string;
}

const YAML_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml'];

/** Every route of the API, in the order OpenAPI lists them. */
export function apiRoutes(options: Omit<AppOptions, 'token'> & { token?: string }): AnyRoute[] {
  const { token } = options;
  const routes: AnyRoute[] = [
    defineRoute({
      method: 'GET', path: '/healthz', operationId: 'health', tag: 'meta', summary: 'Liveness: no token needed', auth: false,
      status: 200, response: z.object({ ok: z.literal(true) }), responseName: 'Health',
      handler: () => Promise.resolve({ ok: true as const }),
    }),
    ...resourceRoutes(options.deps),
    ...provisionRoutes(options.deps, options.provision),
    ...checkpointRoutes(options.deps, options.provision),
    ...promoteRoutes(options.deps, options.provision),
    ...claimRoutes(options.deps, options.provision),
    ...taskRoutes(options.deps),
    ...sessionRoutes(options.deps, (given) => token !== undefined && tokenMatches(given, token)),
    ...eventRoutes(options.deps, options.provision),
    ...gcRoutes(options.deps),
  ];
  const openapi = defineRoute({
    method: 'GET', path: '/openapi.json', operationId: 'openapi', tag: 'meta', summary: 'This document (OpenAPI 3.1)',
    status: 200, response: z.looseObject({ openapi: z.string() }), responseName: 'OpenApiDocument',
    handler: () => Promise.resolve(document),
  });
  const document = buildOpenApi([...routes, openapi], { TaskEvent: TaskEventSchema });
  return [...routes, openapi];
}

/**
 * The API as a Fastify app, not listening (tests drive it with `inject`, `startServer` listens), with the web
 * console's pages. Every route but the public ones (/healthz, POST /v1/session, /login, /assets/*) needs the bearer
 * token or a session cookie; every API error answers `{ error: { code, message, details } }` with the status of its
 * code in the registry.
 */
export function buildApp(options: AppOptions): FastifyInstance {
  // our pino logger (its redaction keeps tokens out; Fastify's request log has no headers); Fastify's typings pin their own pino
  const logger = options.deps.log as unknown as FastifyBaseLogger;
  // forceCloseConnections: an event stream never goes idle, and must not keep a stopping server open
  const app = Fastify({ loggerInstance: logger, bodyLimit: 1024 * 1024, forceCloseConnections: true, frameworkErrors: frameworkErrorReply });
  installErrorReplies(app);
  // a pool spec may be POSTed as the YAML file itself
  app.addContentTypeParser(YAML_TYPES, { parseAs: 'string' }, (_req, body, done) => {
    try {
      // logLevel error: a YAML warning (an unknown tag) would go to the process's stderr, which a client must not reach
      done(null, parseYaml(body as string, { uniqueKeys: true, logLevel: 'error' }));
    } catch (err) {
      done(invalidSpec([{ path: '', message: `not valid YAML: ${(err as Error).message.split('\n')[0]}` }], 'request body'));
    }
  });
  // cookies are parsed before the auth hook below reads the session's (plugins and hooks keep their order)
  void app.register(fastifyCookie, { hook: 'onRequest' });
  app.decorateRequest('vmforkSession', null);
  // the bearer token, or the console's session cookie with its CSRF rules (src/api/session.ts)
  app.addHook('onRequest', async (req) => {
    if ((req.routeOptions.config as { auth?: boolean } | undefined)?.auth === false) return;
    await authenticate(req, { db: options.deps.db, token: options.token });
  });
  for (const route of apiRoutes(options)) registerRoute(app, route);
  // GET /metrics checks its own callers (it also takes the scrape token); the VMs' WebSockets go through the hook above
  registerMetrics(app, { deps: options.deps, token: options.token, scrapeToken: options.metricsToken, sessionValid: sessionCheck(options.deps.db) });
  registerVmStreams(app, options.deps);
  registerConsolePages(app, { webRoot: options.webRoot ?? defaultWebRoot() });
  return app;
}
