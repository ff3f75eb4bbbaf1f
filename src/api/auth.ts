import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyRequest } from 'fastify';
import type { HomeLayout } from '../config/index.js';
import { VmforkError } from '../errors.js';

/** `<home>/api-token`: the bearer token of the data dir's server; only its owner may read it. */
export function apiTokenPath(home: HomeLayout): string {
  return join(home.root, 'api-token');
}

/**
 * The server's bearer token: read from the token file, or made (32 random bytes) and written with mode 0600 at the
 * first start. The file is created exclusively, so two servers starting at once agree on one token; a file that
 * others could read is tightened back to 0600.
 */
export async function ensureApiToken(home: HomeLayout): Promise<{ token: string; path: string }> {
  const path = apiTokenPath(home);
  await mkdir(home.root, { recursive: true });
  try {
    await writeFile(path, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    if (((await stat(path)).mode & 0o077) !== 0) await chmod(path, 0o600);
  }
  const token = (await readFile(path, 'utf8')).trim();
  if (token.length < 16) throw new VmforkError('VMFORK_INTERNAL', `the token file ${path} holds no usable token; remove it and restart the server`);
  return { token, path };
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Constant-time: compares digests of equal length, so neither the content nor the length of the token leaks. */
export function tokenMatches(given: string, token: string): boolean {
  return timingSafeEqual(digest(given), digest(token));
}

/** 401 without `Authorization: Bearer …`, 403 with a wrong token. */
export function checkBearer(req: FastifyRequest, token: string): void {
  const header = req.headers.authorization;
  const m = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m?.[1]) {
    throw new VmforkError('VMFORK_AUTH_REQUIRED', 'send "Authorization: Bearer TOKEN" with the token from the server\'s <home>/api-token');
  }
  if (!tokenMatches(m[1], token)) throw new VmforkError('VMFORK_AUTH_INVALID', 'the bearer token does not match this server\'s <home>/api-token');
}
