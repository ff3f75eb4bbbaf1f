import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * The console's pages (docs/api.md, "Sessions"): one SPA, index.html for every console path. /login and the
 * bundle's assets are public (they hold no data); every other page needs the session cookie, checked by the API's
 * own onRequest hook like any route, and answers a small HTML 401 that sends the browser to /login without it.
 */
export const CONSOLE_PATHS = ['/', '/pools', '/pools/*', '/tasks', '/tasks/*', '/vms/*', '/replicas', '/hosts', '/images', '/templates'] as const;

/**
 * Where `npm run build` puts the SPA: `<package>/dist/web`. Found from the package's root (the nearest directory
 * above this module with a package.json), not a fixed `../..`: this module runs as dist/src/web/pages.js, or
 * bundled into a chunk of dist/cli/ (scripts/bundle-cli.mjs), at two different depths.
 */
export function defaultWebRoot(from = fileURLToPath(import.meta.url)): string {
  let dir = dirname(from);
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) return join(dirname(from), 'web');
    dir = up;
  }
  return join(dir, 'dist', 'web');
}

// the console's pages cannot be framed by another site (clickjacking its buttons); nothing else is restricted here,
// the SPA's own bundle decides what it loads
const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-cache',
  'x-frame-options': 'DENY',
  'content-security-policy': "frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
};

const html = (title: string, body: string, head = ''): string =>
  `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>${title}</title>${head}</head><body>${body}</body></html>\n`;

const LOGIN_REDIRECT = html(
  'Log in to vmfork',
  '<h1>Log in to vmfork</h1><p>This page needs a session: <a href="/login">log in</a> with the API token.</p>',
  '<meta http-equiv="refresh" content="0; url=/login">',
);

/** The SPA's index.html; 503 with what to do when the console was not built (a checkout before `npm run build`). */
async function sendIndex(reply: FastifyReply, webRoot: string): Promise<FastifyReply> {
  const file = join(webRoot, 'index.html');
  let page: string;
  try {
    page = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const why = `The web console is not built: ${file} is missing. Run <code>npm run build</code>; the API works without it.`;
    return reply.status(503).headers(PAGE_HEADERS).send(html('vmfork console not built', `<h1>vmfork console not built</h1><p>${why}</p>`));
  }
  return reply.status(200).headers(PAGE_HEADERS).send(page);
}

/** A console page refused for want of a session: HTML for a browser, not the API's JSON error. */
function pageErrorHandler(err: FastifyError, _req: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err.statusCode === 401 || (err as { status?: number }).status === 401) return reply.status(401).headers(PAGE_HEADERS).send(LOGIN_REDIRECT);
  // anything else is answered as every API error is (the app's error handler)
  throw err;
}

export function registerConsolePages(app: FastifyInstance, options: { webRoot: string }): void {
  const { webRoot } = options;
  // reply.sendFile only: the one route below serves the assets, public (no route of @fastify/static would be)
  void app.register(fastifyStatic, { serve: false });
  app.get('/assets/*', { config: { auth: false } }, (req, reply) => {
    const path = (req.params as { '*': string })['*'];
    // Vite names each asset by its content's hash: a browser may keep it for good
    return reply.sendFile(path, join(webRoot, 'assets'), { dotfiles: 'deny', maxAge: '365d', immutable: true });
  });
  app.get('/login', { config: { auth: false } }, (_req, reply) => sendIndex(reply, webRoot));
  for (const url of CONSOLE_PATHS) app.get(url, { errorHandler: pageErrorHandler }, (_req, reply) => sendIndex(reply, webRoot));
}
