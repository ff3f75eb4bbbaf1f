import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isVmforkError, VmforkError } from '../errors.js';

/** Any failure as the error the API answers with: a VmforkError as it is, Fastify's own 4xx as invalid input. */
export function apiError(err: unknown): VmforkError {
  if (isVmforkError(err)) return err;
  const fe = err as Partial<FastifyError>;
  const status = typeof fe.statusCode === 'number' ? fe.statusCode : 500;
  // malformed JSON, an unsupported content type, a body too large: the request is at fault
  if (status >= 400 && status < 500) return new VmforkError('VMFORK_INVALID_ARGUMENT', fe.message ?? 'malformed request', { cause: err, details: { problems: [{ path: '', message: fe.message ?? 'malformed request', in: 'body' }] } });
  return new VmforkError('VMFORK_INTERNAL', err instanceof Error ? err.message : String(err), { cause: err });
}

/** What Fastify refuses before routing (a URL that does not decode, `%ZZ`): the same error body as every other answer. */
export function frameworkErrorReply(err: FastifyError, _req: FastifyRequest, reply: FastifyReply): void {
  const e = apiError(err);
  void reply.status(e.status).send({ error: e.toJSON() });
}

/** Every error answers `{ error: { code, message, details } }` with its registry status; unknown routes too. */
export function installErrorReplies(app: FastifyInstance): void {
  app.setErrorHandler((err, req, reply) => {
    const e = apiError(err);
    if (e.status >= 500) req.log.error({ err, code: e.code }, 'request failed');
    if (e.code === 'VMFORK_AUTH_REQUIRED') void reply.header('www-authenticate', 'Bearer');
    return reply.status(e.status).send({ error: e.toJSON() });
  });
  app.setNotFoundHandler((req, reply) => {
    const e = new VmforkError('VMFORK_ROUTE_NOT_FOUND', `${req.method} ${req.url.split('?')[0]} (GET /openapi.json lists every route)`);
    return reply.status(e.status).send({ error: e.toJSON() });
  });
}
