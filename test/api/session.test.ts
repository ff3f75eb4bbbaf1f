import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import { buildApp } from '../../src/api/index.js';
import { createSession } from '../../src/api/session.js';
import { createLogger } from '../../src/util/index.js';
import { defaultWebRoot } from '../../src/web/index.js';
import { apiFixture, type ApiFixture } from './fixture.js';

const INDEX = '<!doctype html><title>vmfork console (test)</title><div id="app"></div>';

/** A fixture whose pages serve a fake built console: index.html and one asset. */
function withConsole(fn: (f: ApiFixture, webRoot: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const webRoot = mkdtempSync(join(tmpdir(), 'vmfork-web-'));
    mkdirSync(join(webRoot, 'assets'), { recursive: true });
    writeFileSync(join(webRoot, 'index.html'), INDEX);
    writeFileSync(join(webRoot, 'assets', 'app-1234.js'), 'console.log("vmfork")');
    const f = await apiFixture({ webRoot });
    try {
      await fn(f, webRoot);
    } finally {
      await f.close();
      rmSync(webRoot, { recursive: true, force: true });
    }
  };
}

async function login(f: ApiFixture, headers: Record<string, string> = {}): Promise<{ res: LightMyRequestResponse; cookie: string; csrf: string }> {
  const res = await f.call({ method: 'POST', url: '/v1/session', token: null, headers, payload: { token: f.token } });
  assert.equal(res.statusCode, 200, res.body);
  const cookie = res.cookies.find((c) => c.name === 'vmfork_session')?.value ?? '';
  return { res, cookie, csrf: (res.json() as { csrf: string }).csrf };
}

const withCookie = (cookie: string, extra: Record<string, string> = {}): Record<string, string> => ({ cookie: `vmfork_session=${cookie}`, ...extra });

test('login: the API token buys a session cookie (HttpOnly, SameSite=Strict, Path=/, 12 h) and a CSRF token; the store keeps neither', withConsole(async (f) => {
  const { res, cookie, csrf } = await login(f);
  const header = String(res.headers['set-cookie']);
  assert.match(header, /^vmfork_session=[A-Za-z0-9_-]{43};/);
  for (const attr of ['HttpOnly', 'SameSite=Strict', 'Path=/', 'Max-Age=43200']) assert.ok(header.split('; ').includes(attr), `${attr} in ${header}`);
  assert.ok(!header.includes('Secure'), 'no Secure over plain HTTP: the browser would never send it back');
  assert.equal(res.headers['cache-control'], 'no-store');
  const proxied = await f.call({ method: 'POST', url: '/v1/session', token: null, headers: { 'x-forwarded-proto': 'https' }, payload: { token: f.token } });
  assert.ok(String(proxied.headers['set-cookie']).split('; ').includes('Secure'), 'Secure behind a TLS proxy');
  const body = res.json() as { csrf: string; expiresAt: string };
  assert.ok(Math.abs(Date.parse(body.expiresAt) - Date.now() - 12 * 3600_000) < 60_000, body.expiresAt);
  assert.notEqual(csrf, cookie);
  const rows = await f.deps.db.selectFrom('sessions').selectAll().execute();
  assert.equal(rows.length, 2);
  assert.ok(rows.some((r) => r.id_hash === createHash('sha256').update(cookie).digest('hex')));
  const stored = JSON.stringify(rows);
  assert.ok(!stored.includes(cookie) && !stored.includes(csrf), 'neither the cookie nor the CSRF token is stored');

  const wrong = await f.call({ method: 'POST', url: '/v1/session', token: null, payload: { token: `${f.token}x` } });
  assert.equal(wrong.statusCode, 403);
  assert.equal(wrong.json().error.code, 'VMFORK_AUTH_INVALID');
  assert.equal(wrong.headers['set-cookie'], undefined);
  const foreign = await f.call({ method: 'POST', url: '/v1/session', token: null, headers: { origin: 'https://evil.example' }, payload: { token: f.token } });
  assert.equal(foreign.statusCode, 403, 'another site cannot log this browser in');
  assert.equal(foreign.json().error.code, 'VMFORK_CSRF');
  assert.equal((await f.call({ method: 'POST', url: '/v1/session', token: null, payload: { token: f.token, extra: 1 } })).statusCode, 400);
  assert.equal((await login(f, { origin: 'http://localhost:80' })).res.statusCode, 200, 'our own page may');
  // the page reloads: its CSRF token again
  const again = await f.call({ method: 'GET', url: '/v1/session', token: null, headers: withCookie(cookie) });
  assert.equal(again.statusCode, 200);
  assert.deepEqual(again.json(), body);
  assert.equal((await f.call({ method: 'GET', url: '/v1/session', token: null })).statusCode, 401);
}));

test('the cookie authenticates reads; nothing is 401 VMFORK_AUTH_REQUIRED; an unknown or expired session 401 VMFORK_SESSION_INVALID', withConsole(async (f) => {
  const { cookie } = await login(f);
  assert.equal((await f.call({ method: 'GET', url: '/v1/pools', token: null, headers: withCookie(cookie) })).statusCode, 200);
  const none = await f.call({ method: 'GET', url: '/v1/pools', token: null });
  assert.equal(none.statusCode, 401);
  assert.equal(none.json().error.code, 'VMFORK_AUTH_REQUIRED');
  for (const bad of ['x'.repeat(43), 'not a session', '']) {
    const res = await f.call({ method: 'GET', url: '/v1/pools', token: null, headers: withCookie(bad) });
    assert.equal(res.statusCode, 401, bad);
    assert.equal(res.json().error.code, 'VMFORK_SESSION_INVALID', bad);
  }
  const old = await createSession(f.deps.db, new Date(Date.now() - 13 * 3600_000));
  const expired = await f.call({ method: 'GET', url: '/v1/pools', token: null, headers: withCookie(old.cookie) });
  assert.equal(expired.json().error.code, 'VMFORK_SESSION_INVALID', 'a session ends 12 h after its login');
  // a proxy's Basic credentials (a browser resends them on its own) are not a bearer token: the cookie decides
  assert.equal((await f.call({ method: 'GET', url: '/v1/pools', token: null, headers: withCookie(cookie, { authorization: 'Basic dTpw' }) })).statusCode, 200);
  // GET /metrics checks its own callers: the session is one of them
  const metrics = await f.app.inject({ method: 'GET', url: '/metrics', headers: withCookie(cookie) });
  assert.equal(metrics.statusCode, 200);
  assert.match(metrics.body, /^# HELP /m);
  assert.equal((await f.app.inject({ method: 'GET', url: '/metrics', headers: withCookie(old.cookie) })).json().error.code, 'VMFORK_SESSION_INVALID');
  // the bearer token alone still works, and wins over a cookie beside it
  assert.equal((await f.call({ method: 'GET', url: '/v1/pools' })).statusCode, 200);
  assert.equal((await f.call({ method: 'GET', url: '/v1/pools', headers: withCookie('x'.repeat(43)) })).statusCode, 200);
}));

test('unsafe methods with the cookie need X-Vmfork-Csrf and, when sent, an Origin of this server; a WebSocket upgrade needs that Origin', withConsole(async (f) => {
  const { cookie, csrf } = await login(f);
  const gc = (headers: Record<string, string>, token: string | null = null): Promise<LightMyRequestResponse> => f.call({ method: 'POST', url: '/v1/gc', token, headers, payload: { dryRun: true } });
  const noCsrf = await gc(withCookie(cookie));
  assert.equal(noCsrf.statusCode, 403);
  assert.equal(noCsrf.json().error.code, 'VMFORK_CSRF');
  assert.equal((await gc(withCookie(cookie, { 'x-vmfork-csrf': `${csrf}x` }))).statusCode, 403);
  assert.equal((await gc(withCookie(cookie, { 'x-vmfork-csrf': csrf }))).statusCode, 200);
  assert.equal((await gc(withCookie(cookie, { 'x-vmfork-csrf': csrf, origin: 'http://localhost' }))).statusCode, 200, 'the same host (default port)');
  for (const origin of ['http://evil.example', 'http://localhost:8080', 'null']) {
    const res = await gc(withCookie(cookie, { 'x-vmfork-csrf': csrf, origin }));
    assert.equal(res.statusCode, 403, origin);
    assert.equal(res.json().error.code, 'VMFORK_CSRF');
  }
  // another session's CSRF token is not this one's
  const other = await login(f);
  assert.equal((await gc(withCookie(cookie, { 'x-vmfork-csrf': other.csrf }))).statusCode, 403);
  // a script with the bearer token needs none of it
  assert.equal((await gc({}, f.token)).statusCode, 200);

  const upgrade = (headers: Record<string, string>): Promise<LightMyRequestResponse> =>
    f.app.inject({ method: 'GET', url: '/v1/pools', headers: withCookie(cookie, { connection: 'Upgrade', upgrade: 'websocket', ...headers }) });
  const foreign = await upgrade({ origin: 'https://evil.example' });
  assert.equal(foreign.statusCode, 403, 'a WebSocket is not covered by CORS: a foreign page\'s upgrade is refused');
  assert.equal(foreign.json().error.code, 'VMFORK_CSRF');
  assert.equal((await upgrade({})).statusCode, 403, 'a browser always sends Origin on an upgrade: none is refused');
  assert.equal((await upgrade({ origin: 'http://localhost:80' })).statusCode, 200);
}));

test('logout revokes the session in the store: the same cookie is refused by the API and the pages, and by another server on the store', withConsole(async (f, webRoot) => {
  const { cookie, csrf } = await login(f);
  // a second server on the same store (as two `vmfork serve` on one PostgreSQL): it knows the session
  const other = buildApp({ deps: f.deps, token: f.token, webRoot });
  try {
    assert.equal((await other.inject({ method: 'GET', url: '/v1/tasks', headers: withCookie(cookie) })).statusCode, 200);
    assert.equal((await f.call({ method: 'DELETE', url: '/v1/session', token: null, headers: withCookie(cookie) })).statusCode, 403, 'logout needs the CSRF header too');
    const out = await f.call({ method: 'DELETE', url: '/v1/session', token: null, headers: withCookie(cookie, { 'x-vmfork-csrf': csrf }) });
    assert.equal(out.statusCode, 204);
    assert.equal(out.body, '');
    const cleared = out.cookies.find((c) => c.name === 'vmfork_session');
    assert.ok(cleared && cleared.value === '' && (cleared.maxAge === 0 || (cleared.expires?.getTime() ?? Infinity) < Date.now()), JSON.stringify(out.cookies));
    for (const app of [f.app, other]) {
      const api = await app.inject({ method: 'GET', url: '/v1/pools', headers: withCookie(cookie) });
      assert.equal(api.statusCode, 401);
      assert.equal(api.json().error.code, 'VMFORK_SESSION_INVALID');
      const page = await app.inject({ method: 'GET', url: '/pools', headers: withCookie(cookie) });
      assert.equal(page.statusCode, 401);
      assert.match(String(page.headers['content-type']), /^text\/html/);
    }
    assert.equal((await f.call({ method: 'GET', url: '/v1/session', token: null, headers: withCookie(cookie) })).statusCode, 401);
    // the next login forgets dead rows
    await login(f);
    assert.equal((await f.deps.db.selectFrom('sessions').selectAll().execute()).length, 1);
  } finally {
    await other.close();
  }
}));

test('pages: /login and /assets/* are public; every other console path needs the session (else 401 HTML to /login); no build is a 503', withConsole(async (f, webRoot) => {
  const loginPage = await f.app.inject({ method: 'GET', url: '/login' });
  assert.equal(loginPage.statusCode, 200);
  assert.equal(loginPage.body, INDEX);
  assert.match(String(loginPage.headers['content-type']), /^text\/html/);
  assert.equal(loginPage.headers['x-frame-options'], 'DENY');
  const asset = await f.app.inject({ method: 'GET', url: '/assets/app-1234.js' });
  assert.equal(asset.statusCode, 200);
  assert.equal(asset.body, 'console.log("vmfork")');
  assert.match(String(asset.headers['cache-control']), /immutable/);
  assert.equal((await f.app.inject({ method: 'GET', url: '/assets/missing.js' })).statusCode, 404);
  // only what is under assets/: not a file beside it
  writeFileSync(join(webRoot, 'outside.txt'), 'NOT AN ASSET');
  for (const url of ['/assets/../outside.txt', '/assets/%2e%2e/outside.txt', '/assets/..%2foutside.txt', '/assets/%2e%2e%2foutside.txt', '/assets/.%2e/outside.txt']) {
    const res = await f.app.inject({ method: 'GET', url });
    assert.ok(!res.body.includes('NOT AN ASSET'), `${url} served a file outside assets/`);
  }

  const { cookie } = await login(f);
  for (const url of ['/', '/pools', '/pools/desk', '/pools/new', '/tasks', '/tasks/abc', '/vms/desk-01/console', '/vms/desk-01/screen', '/replicas', '/hosts', '/images', '/templates']) {
    const anon = await f.app.inject({ method: 'GET', url });
    assert.equal(anon.statusCode, 401, url);
    assert.match(String(anon.headers['content-type']), /^text\/html/, url);
    assert.match(anon.body, /<a href="\/login">/, url);
    assert.match(anon.body, /http-equiv="refresh" content="0; url=\/login"/, url);
    const page = await f.app.inject({ method: 'GET', url, headers: withCookie(cookie) });
    assert.equal(page.statusCode, 200, url);
    assert.equal(page.body, INDEX, url);
  }
  // a wrong bearer token on a page is the API's 403, not a login page
  assert.equal((await f.app.inject({ method: 'GET', url: '/pools', headers: { authorization: 'Bearer nope' } })).statusCode, 403);
  // the API's own 404 is untouched by the pages
  assert.equal((await f.call({ method: 'GET', url: '/v1/nothing' })).json().error.code, 'VMFORK_ROUTE_NOT_FOUND');

  const unbuilt = buildApp({ deps: f.deps, token: f.token, webRoot: join(f.dir, 'no-such-build') });
  try {
    const res = await unbuilt.inject({ method: 'GET', url: '/login' });
    assert.equal(res.statusCode, 503);
    assert.match(res.body, /not built/);
    assert.match(res.body, /npm run build/);
  } finally {
    await unbuilt.close();
  }
}));

test('the session\'s secrets never reach the log: the cookie, the CSRF token, the login body\'s token', withConsole(async (f, webRoot) => {
  const logs = join(f.dir, 'logs-redaction');
  const log = createLogger(logs, 'debug');
  const app = buildApp({ deps: { ...f.deps, log }, token: f.token, webRoot });
  try {
    const res = await app.inject({ method: 'POST', url: '/v1/session', payload: { token: f.token } });
    const cookie = res.cookies[0]?.value ?? '';
    const { csrf } = res.json() as { csrf: string };
    await app.inject({ method: 'POST', url: '/v1/gc', headers: withCookie(cookie, { 'x-vmfork-csrf': csrf }), payload: { dryRun: true } });
    // what a careless log line would carry
    log.info({ req: { headers: { cookie: `vmfork_session=${cookie}`, 'x-vmfork-csrf': csrf } }, body: { token: f.token }, reply: { headers: { 'set-cookie': String(res.headers['set-cookie']) } }, csrf }, 'careless');
    log.flush();
    const text = readdirSync(logs).map((n) => readFileSync(join(logs, n), 'utf8')).join('');
    assert.match(text, /careless/);
    for (const secret of [cookie, csrf, f.token]) assert.ok(!text.includes(secret), `a secret in the log: ${secret.slice(0, 6)}…`);
  } finally {
    await app.close();
  }
}));

test('the built console is found from the package root, whether this module runs compiled or bundled into the CLI', () => {
  const root = mkdtempSync(join(tmpdir(), 'vmfork-pkg-'));
  try {
    writeFileSync(join(root, 'package.json'), '{"name":"vmfork"}');
    for (const dir of ['dist/src/web', 'dist/cli']) mkdirSync(join(root, dir), { recursive: true });
    assert.equal(defaultWebRoot(join(root, 'dist/src/web/pages.js')), join(root, 'dist/web'));
    assert.equal(defaultWebRoot(join(root, 'dist/cli/chunk-ABC.js')), join(root, 'dist/web'));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
