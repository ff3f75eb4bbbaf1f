import createClient, { type Middleware } from 'openapi-fetch';
import type { paths } from '../../generated/schema';
import { apiErrorFrom, networkError } from './errors';
import { csrfToken } from './csrf';

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** With the session cookie, an unsafe request must carry the session's CSRF token (else 403 VMFORK_CSRF). */
const csrf: Middleware = {
  onRequest({ request }) {
    const token = csrfToken();
    if (UNSAFE.has(request.method) && token) request.headers.set('X-Vmfork-Csrf', token);
    return request;
  },
};

/** The typed API client: routes, parameters and bodies from the server's OpenAPI document. */
export const api = createClient<paths>({ baseUrl: '', credentials: 'same-origin' });
api.use(csrf);

/** The data of an API call, or its error as an ApiError (code, message, details). */
export async function call<T>(request: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  let answer: { data?: T; error?: unknown; response: Response };
  try {
    answer = await request;
  } catch (err) {
    throw networkError(err);
  }
  if (!answer.response.ok) throw apiErrorFrom(answer.response.status, answer.error);
  return answer.data as T;
}
