import assert from 'node:assert/strict';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';

// ajv-formats is CommonJS with a default export
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;

type Doc = { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: unknown }> }> }>> };

/**
 * Checks an API against its own OpenAPI document: the document with a real OpenAPI 3.1 validator, then every
 * response a test gets (status, content type, body) against the operation it answers. One instance per app.
 */
export class OpenApiChecker {
  private ajv = new Ajv2020({ strict: false, allErrors: true });
  private constructor(private doc: Doc) {
    addFormats(this.ajv);
    this.ajv.addSchema(doc as object, 'openapi.json');
  }

  static async load(app: FastifyInstance, token: string): Promise<OpenApiChecker> {
    const res = await app.inject({ method: 'GET', url: '/openapi.json', headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.statusCode, 200, res.body);
    const doc = res.json() as Doc & { openapi: string };
    assert.equal(doc.openapi, '3.1.0');
    const result = await new Validator().validate(doc as Record<string, unknown>);
    assert.ok(result.valid, `the OpenAPI document is invalid: ${JSON.stringify(result.errors, null, 1)}`);
    const checker = new OpenApiChecker(doc);
    checker.check('GET', '/openapi.json', res);
    return checker;
  }

  /** A checker for a document fetched from a running server (the integration tests talk to a real `vmfork serve`). */
  static async fromDocument(doc: unknown): Promise<OpenApiChecker> {
    const result = await new Validator().validate(doc as Record<string, unknown>);
    assert.ok(result.valid, `the OpenAPI document is invalid: ${JSON.stringify(result.errors, null, 1)}`);
    return new OpenApiChecker(doc as Doc);
  }

  /** The documented path template a concrete path matches (`/v1/vms/web-1` → `/v1/vms/{name}`). */
  private template(path: string): string | undefined {
    return Object.keys(this.doc.paths).find((t) => new RegExp(`^${t.replace(/\{\w+\}/g, '[^/]+')}$`).test(path));
  }

  check(method: string, url: string, res: Pick<LightMyRequestResponse, 'statusCode' | 'headers' | 'body' | 'json'>): void {
    const path = url.split('?')[0] as string;
    const template = path in this.doc.paths ? path : this.template(path);
    const op = template === undefined ? undefined : this.doc.paths[template]?.[method.toLowerCase()];
    // an undocumented route answers the documented 404 error of the API as a whole
    if (!op || template === undefined) {
      assert.ok(res.statusCode >= 400, `${method} ${url} answered ${res.statusCode} but is not documented`);
      return this.validate('#/components/schemas/Error', res.json(), `${method} ${url} (no such route)`);
    }
    const key = String(res.statusCode) in op.responses ? String(res.statusCode) : 'default';
    const documented = op.responses[key];
    assert.ok(documented, `${method} ${template}: status ${res.statusCode} is not documented`);
    const type = String(res.headers['content-type'] ?? '').split(';')[0] as string;
    if (!documented.content) {
      assert.equal(res.body, '', `${method} ${template} ${res.statusCode}: documented without a body, but answered one`);
      return;
    }
    assert.ok(documented.content[type], `${method} ${template} ${res.statusCode}: content type ${type} is not documented`);
    const pointer = `openapi.json#/paths/${template.replace(/~/g, '~0').replace(/\//g, '~1')}/${method.toLowerCase()}/responses/${key}/content/${type.replace(/\//g, '~1')}/schema`;
    if (type === 'text/event-stream') {
      for (const e of parseEventStream(res.body)) this.validate(`openapi.json#/components/schemas/${eventSchema(e.event, e.data)}`, JSON.parse(e.data), `${method} ${url} event ${e.id || e.event}`);
      return;
    }
    this.validate(pointer, res.json(), `${method} ${url} ${res.statusCode}`);
  }

  private validate(ref: string, value: unknown, what: string): void {
    const fullRef = ref.startsWith('#') ? `openapi.json${ref}` : ref;
    const validate = this.ajv.getSchema(fullRef) ?? this.ajv.compile({ $ref: fullRef });
    assert.ok(validate(value), `${what} does not match its OpenAPI schema: ${JSON.stringify(validate.errors, null, 1)}\n${JSON.stringify(value)}`);
  }
}

/** The schema of an event's data: the pool views' (GET /v1/events), else a task's event (GET /v1/tasks/{id}/events). */
export function eventSchema(event: string, data: string): string {
  if (event === 'pools') return 'PoolList';
  if (event === 'pool') return data.startsWith('{"error"') ? 'Error' : 'PoolDetail';
  return 'TaskEvent';
}

export interface SseEvent {
  id: string;
  event: string;
  data: string;
}

/** Splits a complete text/event-stream body into its events (comment lines skipped). */
export function parseEventStream(body: string): SseEvent[] {
  return body
    .split('\n\n')
    .filter((block) => block.trim() && !block.startsWith(':'))
    .map((block) => {
      const e: SseEvent = { id: '', event: 'message', data: '' };
      for (const line of block.split('\n')) {
        const [field, ...rest] = line.split(': ');
        const value = rest.join(': ');
        if (field === 'id') e.id = value;
        else if (field === 'event') e.event = value;
        else if (field === 'data') e.data += value;
      }
      return e;
    });
}

/** `app.inject` with the bearer token (unless `token: null`) whose every answer is checked against the document. */
export async function checkedInject(
  app: FastifyInstance,
  checker: OpenApiChecker,
  token: string,
  opts: InjectOptions & { method: string; url: string; token?: string | null },
): Promise<LightMyRequestResponse> {
  const { token: override, ...inject } = opts;
  const bearer = override === undefined ? token : override;
  const headers = { ...(inject.headers ?? {}), ...(bearer === null ? {} : { authorization: `Bearer ${bearer}` }) };
  const res = await app.inject({ ...inject, headers } as InjectOptions);
  checker.check(opts.method, opts.url, res);
  return res;
}
