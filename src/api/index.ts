/**
 * The REST API server (docs/api.md): Fastify over the same service functions as the CLI, bearer-token auth, OpenAPI
 * 3.1 generated from the zod schemas the routes validate with, tasks followed as server-sent events.
 */
export { apiRoutes, buildApp, type AppOptions } from './app.js';
export { apiTokenPath, ensureApiToken, tokenMatches } from './auth.js';
export { acquireServerLock, askHolder, lockNameFor, type LockHolder, type ServerLock } from './server-lock.js';
export { ErrorBodySchema, buildOpenApi } from './openapi.js';
export type { ProvisionService } from './provision-service.js';
export { DEFAULT_LISTEN, parseListen, startServer, type RunningServer, type StartServerOptions } from './server.js';
