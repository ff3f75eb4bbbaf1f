import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyRequest } from 'fastify';
import { ensurePrivateDir, PRIVATE_FILE_MODE, readTokenFile, type HomeLayout } from '../config/index.js';
import { VmforkError } from '../errors.js';

/** `<home>/api-token`: the bearer token of the data dir's server; only its owner may read it. */
export function apiTokenPath(home: HomeLayout): string {
  return join(home.root, 'api-token');
}

/**
 * The server's bearer token: read from the token file, or made (32 random bytes) and written with mode 0600 at the
 * first start. The file is created exclusively (O_EXCL: a symlink planted at the path is not followed), so two
 * servers starting at once agree on one token. An existing file is trusted only if it is a regular file of this
 * uid that group and other cannot read (readTokenFile): anything else is VMFORK_TOKEN_FILE_UNSAFE, never tightened
 * or followed, because a token someone else could have read or planted is not a secret any more.
 */
export async function ensureApiToken(home: HomeLayout): Promise<{ token: string; path: string }> {
  const path = apiTokenPath(home);
  ensurePrivateDir(home.root);
  try {
    await writeFile(path, `${randomBytes(32).toString('base64url')}\n`, { mode: PRIVATE_FILE_MODE, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const token = await readTokenFile(path);
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
