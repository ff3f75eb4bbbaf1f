import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { invalidSpec } from '../pool/index.js';
import { TaskEventSchema } from '../task/index.js';
import type { VmDeps } from '../vm/index.js';
import { checkBearer } from './auth.js';
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

export interface AppOptions {
  deps: VmDeps;
  /** The provisioning engine; without it pool, replica and power routes answer 501 VMFORK_NOT_SUPPORTED. */
  provision?: ProvisionService | undefined;
  /** The bearer token every route but /healthz requires (see ensureApiToken). */
  token: string;
}

const YAML_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml'];

/** Every route of the API, in the order OpenAPI lists them. */
export function apiRoutes(options: Omit<AppOptions, 'token'>): AnyRoute[] {
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
 * The API as a Fastify app, not listening (tests drive it with `inject`, `startServer` listens). Every route but
 * /healthz needs the bearer token; every error answers `{ error: { code, message, details } }` with the status of
 * its code in the registry.
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
  app.addHook('onRequest', async (req) => {
    if ((req.routeOptions.config as { auth?: boolean } | undefined)?.auth === false) return;
    checkBearer(req, options.token);
  });
  for (const route of apiRoutes(options)) registerRoute(app, route);
  return app;
}
