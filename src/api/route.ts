import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { invalidSpec, zodProblems, type SpecProblem } from '../pool/index.js';

/**
 * One API route, declared once: its path, the zod schemas its input is validated with, the schema of its answer,
 * and the handler. The same declarations register the Fastify routes and generate the OpenAPI document, so what is
 * documented is what is enforced.
 */
export interface RouteSpec<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** OpenAPI style: `/v1/vms/{name}`. */
  path: string;
  operationId: string;
  summary: string;
  tag: string;
  /** false: no bearer token needed (only /healthz). @default true */
  auth?: boolean;
  params?: P;
  query?: Q;
  body?: B;
  /** The request body's component name in OpenAPI. @default `${operationId}Request` */
  bodyName?: string;
  /** The success status. */
  status: 200 | 202 | 204;
  /** Its body: a schema (registered under `responseName` in OpenAPI), a server-sent event stream, or none (204). */
  response: z.ZodType | 'event-stream' | 'no-content';
  responseName?: string;
  /** An event stream's events, as OpenAPI describes the answer. @default the task events of a followed task */
  events?: string;
  /** Error statuses worth documenting besides 401, 403 and 500 (400 is on every route: each refuses an unknown query parameter). */
  errors?: number[];
  handler(input: { params: z.output<P>; query: z.output<Q>; body: z.output<B> }, req: FastifyRequest, reply: FastifyReply): Promise<unknown>;
}

export type AnyRoute = RouteSpec<z.ZodType, z.ZodType, z.ZodType>;

export function defineRoute<P extends z.ZodType = z.ZodObject, Q extends z.ZodType = z.ZodObject, B extends z.ZodType = z.ZodUnknown>(
  route: RouteSpec<P, Q, B>,
): AnyRoute {
  return route as unknown as AnyRoute;
}

/** Problems of one input part, each tagged with where it came from (path parameter, query, body). */
function check(schema: z.ZodType | undefined, value: unknown, where: 'path' | 'query' | 'body', problems: (SpecProblem & { in: string })[]): unknown {
  if (!schema) return value;
  const parsed = schema.safeParse(value ?? (where === 'body' ? undefined : {}));
  if (parsed.success) return parsed.data;
  problems.push(...zodProblems(parsed.error.issues).map((p) => ({ ...p, in: where })));
  return undefined;
}

/** A route without query parameters refuses any (`?colour=blue` is a 400, as an unknown body field is). */
const NO_QUERY = z.strictObject({});

/** Registers a route on Fastify: input validated (400 naming every field at fault, before the handler runs), then the handler. */
export function registerRoute(app: FastifyInstance, route: AnyRoute): void {
  app.route({
    method: route.method,
    url: route.path.replace(/\{(\w+)\}/g, ':$1'),
    config: { auth: route.auth !== false },
    handler: async (req, reply) => {
      const problems: (SpecProblem & { in: string })[] = [];
      const params = check(route.params, req.params, 'path', problems);
      const query = check(route.query ?? NO_QUERY, req.query, 'query', problems);
      const body = check(route.body, req.body, 'body', problems);
      if (problems.length) throw invalidSpec(problems, `${route.method} ${route.path}`);
      const out = await route.handler({ params, query, body }, req, reply);
      if (route.response === 'event-stream') return reply;
      if (route.response === 'no-content') return reply.status(204).send();
      return reply.status(route.status).send(out);
    },
  });
}
