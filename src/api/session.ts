import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { VmforkError } from '../errors.js';
import { deleteDeadSessions, insertSession, liveSession, revokeSession, type Db } from '../store/index.js';
import { checkBearer, tokenMatches } from './auth.js';

/**
 * Web console sessions (docs/api.md, "Sessions"). A browser logs in once with the API token and then holds an
 * HttpOnly cookie: the token never sits in page storage, where any script on the page could read it. A cookie is
 * sent by the browser on its own, so a request it authenticates must also prove it came from our page:
 * - SameSite=Strict: the browser sends no cookie with a request another site starts;
 * - unsafe methods carry `X-Vmfork-Csrf`: a header another origin cannot set without a CORS preflight we never
 *   grant, holding a value only our page learned (from POST/GET /v1/session);
 * - an `Origin` header, when present, must be this server (browsers always send it on unsafe methods and
 *   WebSocket upgrades; a WebSocket is not covered by CORS, so its upgrade must carry one).
 */

export const SESSION_COOKIE = 'vmfork_session';
export const CSRF_HEADER = 'x-vmfork-csrf';
/** A session lasts 12 hours from its login (no sliding: a stolen cookie is worth a bounded time). */
export const SESSION_SECONDS = 12 * 60 * 60;

export interface Session {
  /** sha256 of the cookie's value: the row's key. */
  idHash: string;
  csrf: string;
  expiresAt: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The session that authenticated this request; null when the bearer token did (or on a public route). */
    vmforkSession: Session | null;
  }
}

const COOKIE_VALUE = /^[A-Za-z0-9_-]{43}$/;
const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

const idHashOf = (cookie: string): string => createHash('sha256').update(cookie).digest('hex');

/**
 * The CSRF token is derived from the cookie's value (HMAC keyed by it), not stored: a server checks it with
 * nothing but the request in hand, every server on the store agrees on it, and the table holds nothing a reader of
 * the database could send (neither the cookie, of which it keeps only the sha256, nor the CSRF token, which cannot
 * be computed from that hash). Who can compute it already holds the cookie; who cannot read the cookie (HttpOnly:
 * no script can) learns it only from our own answers, which no other origin can read.
 */
const csrfOf = (cookie: string): string => createHmac('sha256', cookie).update('vmfork csrf v1').digest('base64url');

/** Makes a session: a fresh 256-bit cookie value, its row (by hash), and dead rows forgotten. */
export async function createSession(db: Db, now = new Date()): Promise<{ cookie: string; session: Session }> {
  const cookie = randomBytes(32).toString('base64url');
  const expiresAt = new Date(now.getTime() + SESSION_SECONDS * 1000).toISOString();
  await deleteDeadSessions(db, now.toISOString());
  await insertSession(db, { id_hash: idHashOf(cookie), created_at: now.toISOString(), expires_at: expiresAt });
  return { cookie, session: { idHash: idHashOf(cookie), csrf: csrfOf(cookie), expiresAt } };
}

/** The live session a cookie value names, or undefined (malformed, unknown, expired, logged out). */
export async function findSession(db: Db, cookie: string | undefined): Promise<Session | undefined> {
  if (cookie === undefined || !COOKIE_VALUE.test(cookie)) return undefined;
  const row = await liveSession(db, idHashOf(cookie), new Date().toISOString());
  return row ? { idHash: row.id_hash, csrf: csrfOf(cookie), expiresAt: row.expires_at } : undefined;
}

/** Still live? (A long-lived stream asks again now and then, so a logout also ends what it opened.) */
export async function sessionIsLive(db: Db, session: Session): Promise<boolean> {
  return (await liveSession(db, session.idHash, new Date().toISOString())) !== undefined;
}

export async function endSession(db: Db, session: Session): Promise<void> {
  await revokeSession(db, session.idHash, new Date().toISOString());
}

const COOKIE_OPTIONS = { httpOnly: true, sameSite: 'strict', path: '/' } as const;

/**
 * Secure when the browser reached us over HTTPS: directly, or through the TLS proxy docs/api.md asks for beyond
 * 127.0.0.1 (its X-Forwarded-Proto). Over plain HTTP a Secure cookie would never come back. The header is taken on
 * trust: a client lying about it only gets a cookie its own browser will not send.
 */
function secure(req: FastifyRequest): boolean {
  return req.protocol === 'https' || String(req.headers['x-forwarded-proto'] ?? '').split(',')[0]?.trim() === 'https';
}

export function setSessionCookie(reply: FastifyReply, cookie: string): void {
  void reply.setCookie(SESSION_COOKIE, cookie, { ...COOKIE_OPTIONS, secure: secure(reply.request), maxAge: SESSION_SECONDS });
}

export function clearSessionCookie(reply: FastifyReply): void {
  void reply.clearCookie(SESSION_COOKIE, { ...COOKIE_OPTIONS, secure: secure(reply.request) });
}

/**
 * Whether the request's `Origin` is this server (same host and port as its `Host` header; the scheme may differ
 * behind a TLS proxy); undefined without an `Origin` header. `Origin: null` (a sandboxed or file page) is foreign.
 */
export function sameOrigin(req: FastifyRequest): boolean | undefined {
  const origin = req.headers.origin;
  if (origin === undefined) return undefined;
  try {
    const from = new URL(origin);
    return from.host === new URL(`${from.protocol}//${req.headers.host ?? ''}`).host;
  } catch {
    return false;
  }
}

const isUpgrade = (req: FastifyRequest): boolean => req.headers.upgrade?.toLowerCase() === 'websocket';

function refuseForeignOrigin(req: FastifyRequest, required: boolean): void {
  const same = sameOrigin(req);
  if (same === false || (same === undefined && required)) {
    throw new VmforkError('VMFORK_CSRF', `${same === undefined ? 'no Origin header' : `Origin ${(req.headers.origin ?? '').slice(0, 200)} is not this server (${(req.headers.host ?? 'no Host').slice(0, 200)})`}: refused for a request the session cookie authenticates`);
  }
}

/**
 * The onRequest check of every route that is not public: the bearer token, or else the session cookie with its
 * CSRF rules. An `Authorization` header other than Bearer (a proxy's Basic, which browsers resend on their own) is
 * not taken for a token: the cookie still decides.
 */
export async function authenticate(req: FastifyRequest, options: { db: Db; token: string }): Promise<void> {
  req.vmforkSession = null;
  if (/^Bearer(\s|$)/i.test(req.headers.authorization ?? '')) {
    checkBearer(req, options.token);
    // a browser page cannot put a bearer token on a WebSocket, but a page that found one must still be this server's
    if (isUpgrade(req)) refuseForeignOrigin(req, false);
    return;
  }
  const cookie = req.cookies[SESSION_COOKIE];
  if (cookie === undefined) {
    throw new VmforkError('VMFORK_AUTH_REQUIRED', 'send "Authorization: Bearer TOKEN" with the token from the server\'s <home>/api-token, or log in (POST /v1/session; the console: /login)');
  }
  const session = await findSession(options.db, cookie);
  if (!session) throw new VmforkError('VMFORK_SESSION_INVALID', 'log in again: POST /v1/session with the API token (the console: /login)');
  if (isUpgrade(req)) refuseForeignOrigin(req, true);
  if (UNSAFE.has(req.method)) {
    refuseForeignOrigin(req, false);
    const given = req.headers[CSRF_HEADER];
    if (typeof given !== 'string' || !tokenMatches(given, session.csrf)) {
      throw new VmforkError('VMFORK_CSRF', `${req.method} with the session cookie needs the header X-Vmfork-Csrf: the csrf POST/GET /v1/session answered`);
    }
  }
  req.vmforkSession = session;
}

/**
 * For a route that checks its own callers (GET /metrics): true with a live session cookie, false without a cookie,
 * VMFORK_SESSION_INVALID with a dead one. Safe methods only: it checks no CSRF header.
 */
export function sessionCheck(db: Db): (req: FastifyRequest) => Promise<boolean> {
  return async (req) => {
    const cookie = req.cookies[SESSION_COOKIE];
    if (cookie === undefined) return false;
    if (await findSession(db, cookie)) return true;
    throw new VmforkError('VMFORK_SESSION_INVALID', 'log in again: POST /v1/session with the API token (the console: /login)');
  };
}
