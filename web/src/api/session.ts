/**
 * The console's session (issue 15): the API token is exchanged once for an HttpOnly cookie the page cannot read,
 * and a CSRF token that the page holds in memory (./csrf.ts) and sends back as `X-Vmfork-Csrf` on every unsafe
 * request (the client's middleware).
 */
import { api, call } from './client';
import { setCsrfToken } from './csrf';
import { asApiError } from './errors';
import type { Session } from './types';

/** POST /v1/session: the API token for a session cookie. A wrong token is 403 VMFORK_AUTH_INVALID. */
export async function logIn(token: string): Promise<Session> {
  const session = await call(api.POST('/v1/session', { body: { token } }));
  setCsrfToken(session.csrf);
  return session;
}

/** GET /v1/session: the CSRF token of the cookie's session (a reloaded page). 401 without a live session. */
export async function restoreSession(): Promise<Session> {
  const session = await call(api.GET('/v1/session'));
  setCsrfToken(session.csrf);
  return session;
}

/** DELETE /v1/session: the session ends on the server; the page forgets its token whatever the answer. */
export async function logOut(): Promise<void> {
  try {
    await call(api.DELETE('/v1/session'));
  } catch (err) {
    // already ended (expired, logged out elsewhere): the page is logged out all the same
    if (asApiError(err).status !== 401) throw err;
  } finally {
    setCsrfToken(null);
  }
}
