import { z } from 'zod';
import { VmforkError } from '../errors.js';
import type { VmDeps } from '../vm/index.js';
import { defineRoute, type AnyRoute } from './route.js';
import { clearSessionCookie, createSession, endSession, findSession, sameOrigin, SESSION_COOKIE, setSessionCookie } from './session.js';

const SessionSchema = z.object({
  /** Send it back as `X-Vmfork-Csrf` on every POST, PUT, PATCH and DELETE the cookie authenticates. */
  csrf: z.string(),
  expiresAt: z.string(),
});

/** The web console's login, its CSRF token again (a reloaded page), and logout (src/api/session.ts). */
/** `tokenIs`: whether a token is the API token (absent where no token is configured: every login is refused). */
export function sessionRoutes(deps: VmDeps, tokenIs: (given: string) => boolean): AnyRoute[] {
  return [
    defineRoute({
      method: 'POST', path: '/v1/session', operationId: 'login', tag: 'sessions', auth: false,
      summary: 'Log in with the API token: sets the session cookie (HttpOnly, SameSite=Strict, 12 h) and answers its CSRF token',
      body: z.strictObject({ token: z.string().min(1).max(1024).describe('the token in <home>/api-token') }), bodyName: 'LoginRequest',
      status: 200, response: SessionSchema, responseName: 'Session', errors: [403],
      handler: async ({ body }, req, reply) => {
        // a page of another site must not log this browser in (nor learn whether a token is right)
        if (sameOrigin(req) === false) throw new VmforkError('VMFORK_CSRF', `Origin ${(req.headers.origin ?? '').slice(0, 200)} is not this server: log in from its own /login`);
        if (!tokenIs(body.token)) throw new VmforkError('VMFORK_AUTH_INVALID', 'the token does not match this server\'s <home>/api-token');
        // the session the browser held until now, if any, ends: one login, one live cookie per browser
        const before = await findSession(deps.db, req.cookies[SESSION_COOKIE]);
        if (before) await endSession(deps.db, before);
        const { cookie, session } = await createSession(deps.db);
        setSessionCookie(reply, cookie);
        void reply.header('cache-control', 'no-store');
        return { csrf: session.csrf, expiresAt: session.expiresAt };
      },
    }),
    defineRoute({
      method: 'GET', path: '/v1/session', operationId: 'getSession', tag: 'sessions',
      summary: 'The session\'s CSRF token and end (a reloaded console page gets its CSRF token back); 401 without a session cookie',
      status: 200, response: SessionSchema, responseName: 'Session',
      handler: async (_input, req, reply) => {
        const session = req.vmforkSession ?? (await findSession(deps.db, req.cookies[SESSION_COOKIE]));
        if (!session) throw new VmforkError('VMFORK_AUTH_REQUIRED', 'no session cookie: log in with POST /v1/session (the console: /login)');
        void reply.header('cache-control', 'no-store');
        return { csrf: session.csrf, expiresAt: session.expiresAt };
      },
    }),
    defineRoute({
      method: 'DELETE', path: '/v1/session', operationId: 'logout', tag: 'sessions',
      summary: 'Log out: the session ends on every server of the store (its cookie is refused from now on) and the cookie is cleared',
      status: 204, response: 'no-content',
      handler: async (_input, req, reply) => {
        // a request the bearer token authenticated may carry the cookie too: it still names the session to end
        const session = req.vmforkSession ?? (await findSession(deps.db, req.cookies[SESSION_COOKIE]));
        if (!session) throw new VmforkError('VMFORK_AUTH_REQUIRED', 'no session cookie: nothing to log out of');
        await endSession(deps.db, session);
        clearSessionCookie(reply);
        return undefined;
      },
    }),
  ];
}
