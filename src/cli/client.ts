import { createParser } from 'eventsource-parser';
import { readTokenFile, type HomeLayout } from '../config/index.js';
import { ERROR_REGISTRY, isVmforkError, VmforkError, type ErrorCode } from '../errors.js';
import type { TaskEvent } from '../task/index.js';

export const DEFAULT_URL = 'http://127.0.0.1:8470';

/** The CLI's side of the REST API: where the server is, its token, requests and task event streams. */
export interface ApiClient {
  readonly url: string;
  request<T>(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: { json: unknown } | { yaml: string }): Promise<T>;
  /** Follows GET /v1/tasks/{id}/events from event `after` on, calling `onEvent` for each; resolves when the stream ends. */
  events(taskId: string, after: number, onEvent: (e: TaskEvent) => void): Promise<void>;
}

/** A failed answer as the server's own error: same code, its message without the registry prefix repeated. */
function serverError(status: number, body: unknown): VmforkError {
  const e = (body as { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | undefined)?.error;
  const known = e?.code !== undefined && e.code in ERROR_REGISTRY;
  const code = (known ? e.code : 'VMFORK_INTERNAL') as ErrorCode;
  const prefix = `${ERROR_REGISTRY[code].message}: `;
  const message = e?.message ?? `HTTP ${status}`;
  const detail = message.startsWith(prefix) ? message.slice(prefix.length) : message === ERROR_REGISTRY[code].message ? undefined : message;
  return new VmforkError(code, detail, { details: { ...e?.details, httpStatus: status } });
}

/**
 * `VMFORK_URL` (default http://127.0.0.1:8470) and the token from the data dir's `api-token`, read when first
 * needed: a server that is not running, or a data dir it never used, is VMFORK_SERVER_UNAVAILABLE with what to do.
 */
export function apiClient(home: HomeLayout, env: NodeJS.ProcessEnv = process.env): ApiClient {
  const url = (env.VMFORK_URL ?? DEFAULT_URL).replace(/\/+$/, '');
  const tokenPath = `${home.root}/api-token`;
  let token: Promise<string> | undefined;
  const readToken = (): Promise<string> =>
    (token ??= readTokenFile(tokenPath).catch(
      (err: NodeJS.ErrnoException) => {
        // an unsafe file keeps its own code: the client refuses to send a token others could have read or planted
        if (isVmforkError(err)) throw err;
        throw new VmforkError('VMFORK_SERVER_UNAVAILABLE', `no API token at ${tokenPath} (${err.code}): start the server with "vmfork serve" on this data dir (--home / VMFORK_HOME)`, { cause: err });
      },
    ));
  const send = async (method: string, path: string, headers: Record<string, string>, body?: string): Promise<Response> => {
    const auth = { authorization: `Bearer ${await readToken()}` };
    try {
      return await fetch(`${url}${path}`, { method, headers: { ...headers, ...auth }, ...(body === undefined ? {} : { body }) });
    } catch (err) {
      // fetch wraps the socket error; connecting to a name with several addresses wraps one per address
      const cause = (err as { cause?: { code?: string; errors?: { code?: string }[]; message?: string } }).cause;
      const why = cause?.code ?? cause?.errors?.[0]?.code ?? cause?.message ?? (err as Error).message;
      throw new VmforkError('VMFORK_SERVER_UNAVAILABLE', `${url} (${why}): start it with "vmfork serve", or point VMFORK_URL at it`, { cause: err, details: { url } });
    }
  };
  return {
    url,
    async request<T>(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: { json: unknown } | { yaml: string }): Promise<T> {
      const [type, text] = body === undefined ? [undefined, undefined] : 'yaml' in body ? ['application/yaml', body.yaml] : ['application/json', JSON.stringify(body.json)];
      const res = await send(method, path, { accept: 'application/json', ...(type ? { 'content-type': type } : {}) }, text);
      const parsed: unknown = await res.json().catch(() => undefined);
      if (!res.ok) throw serverError(res.status, parsed);
      return parsed as T;
    },
    async events(taskId: string, after: number, onEvent: (e: TaskEvent) => void): Promise<void> {
      const res = await send('GET', `/v1/tasks/${encodeURIComponent(taskId)}/events?after=${after}`, { accept: 'text/event-stream' });
      if (!res.ok || !res.body) throw serverError(res.status, await res.json().catch(() => undefined));
      const parser = createParser({ onEvent: (e) => onEvent(JSON.parse(e.data) as TaskEvent) });
      const decoder = new TextDecoder();
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) parser.feed(decoder.decode(chunk, { stream: true }));
      } catch {
        // the connection dropped (a server restart): the caller looks at the task and reconnects from its last event
      }
    },
  };
}
