import { z } from 'zod';
import { ERROR_CODES } from '../errors.js';
import type { AnyRoute } from './route.js';

export const ErrorBodySchema = z.object({
  error: z.object({
    code: z.enum(ERROR_CODES as [string, ...string[]]),
    message: z.string(),
    /** Structured facts; a 400 has `problems: [{ path, message, in? }]` naming every field at fault. */
    details: z.record(z.string(), z.unknown()).optional(),
  }),
});

type JsonSchema = Record<string, unknown>;
const STATUS_TEXT: Record<number, string> = {
  400: 'Invalid input: `error.details.problems` names every field at fault; nothing was created',
  401: 'No bearer token nor session cookie (VMFORK_AUTH_REQUIRED), or a session that is no more (VMFORK_SESSION_INVALID)',
  403: 'Wrong bearer token (VMFORK_AUTH_INVALID), or a cookie request without its CSRF header or from another origin (VMFORK_CSRF)',
  404: 'Not found',
  409: 'Conflict with the current state',
  500: 'Internal error',
  501: 'Not supported by this server',
  507: 'Not enough room on this host (memory or disk): `error.details` names the bound and how many fit; nothing was created',
};

function clean(schema: JsonSchema): JsonSchema {
  const { $schema: _s, $id: _i, ...rest } = schema;
  return rest;
}

/** Path or query parameters from a zod object's fields. */
function parameters(schema: z.ZodType | undefined, where: 'path' | 'query'): JsonSchema[] {
  if (!schema) return [];
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, s]) => ({
    name,
    in: where,
    required: where === 'path' || (json.required ?? []).includes(name),
    schema: s,
    ...(typeof s.description === 'string' ? { description: s.description } : {}),
  }));
}

/**
 * The OpenAPI 3.1 document of the routes, generated from the zod schemas they validate with. Request and response
 * schemas become components (`#/components/schemas/NAME`); request bodies are documented as they are read
 * (`io: input`), answers as they are written (`io: output`).
 */
export function buildOpenApi(routes: readonly AnyRoute[], extra: Record<string, z.ZodType> = {}, version = '0.1.0'): JsonSchema {
  const requests = z.registry<{ id: string }>();
  const responses = z.registry<{ id: string }>();
  const ref = (reg: typeof requests, schema: z.ZodType, id: string): JsonSchema => {
    const known = reg.get(schema)?.id;
    if (!known) reg.add(schema, { id });
    return { $ref: `#/components/schemas/${known ?? id}` };
  };
  const errorRef = ref(responses, ErrorBodySchema, 'Error');
  for (const [id, schema] of Object.entries(extra)) ref(responses, schema, id);
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const r of routes) {
    const errors = new Set([...(r.errors ?? []), 500, ...(r.auth === false ? [] : [401, 403]), 400]);
    const ok =
      r.response === 'event-stream'
        ? { description: r.events ?? 'Server-sent events: `id` is the event number, `event` its kind, `data` a TaskEvent (JSON)', content: { 'text/event-stream': { schema: { type: 'string' } } } }
        : r.response === 'no-content'
          ? { description: r.summary }
          : { description: r.summary, content: { 'application/json': { schema: ref(responses, r.response, r.responseName ?? `${r.operationId}Response`) } } };
    const op: JsonSchema = {
      operationId: r.operationId,
      summary: r.summary,
      tags: [r.tag],
      ...(r.auth === false ? { security: [] } : {}),
      parameters: [...parameters(r.params, 'path'), ...parameters(r.query, 'query')],
      ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: ref(requests, r.body, r.bodyName ?? `${r.operationId}Request`) } } } } : {}),
      responses: {
        [String(r.status)]: ok,
        ...Object.fromEntries([...errors].sort().map((s) => [String(s), { description: STATUS_TEXT[s] ?? 'Error', content: { 'application/json': { schema: errorRef } } }])),
        default: { description: 'Any other error', content: { 'application/json': { schema: errorRef } } },
      },
    };
    (paths[r.path] ??= {})[r.method.toLowerCase()] = op;
  }
  const uri = (id: string): string => `#/components/schemas/${id}`;
  const req = z.toJSONSchema(requests, { io: 'input', uri, unrepresentable: 'any' }).schemas;
  const res = z.toJSONSchema(responses, { io: 'output', uri, unrepresentable: 'any' }).schemas;
  const schemas = Object.fromEntries(Object.entries({ ...res, ...req }).map(([k, v]) => [k, clean(v as JsonSchema)]));
  return {
    openapi: '3.1.0',
    info: { title: 'vmfork API', version, description: 'Pools of customized VMs forked from a frozen template (docs/api.md)' },
    servers: [{ url: '/' }],
    // either one: a script sends the bearer token, the web console its session cookie (with X-Vmfork-Csrf on unsafe methods)
    security: [{ bearer: [] }, { session: [] }],
    paths,
    components: {
      schemas,
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'The token in <home>/api-token' },
        session: { type: 'apiKey', in: 'cookie', name: 'vmfork_session', description: 'The web console\'s session (POST /v1/session); unsafe methods also send X-Vmfork-Csrf' },
      },
    },
  };
}
