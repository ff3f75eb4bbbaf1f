import { join } from 'node:path';
import type { FastifyRequest } from 'fastify';
import { ensureTokenFile, type HomeLayout } from '../config/index.js';
import { VmforkError } from '../errors.js';
import { secretEquals } from '../util/index.js';

/** `<home>/api-token`: the bearer token of the data dir's server; only its owner may read it. */
export function apiTokenPath(home: HomeLayout): string {
  return join(home.root, 'api-token');
}

/** The server's bearer token: made at the first start, kept and checked as ensureTokenFile says. */
export async function ensureApiToken(home: HomeLayout): Promise<{ token: string; path: string }> {
  return ensureTokenFile(apiTokenPath(home), 'token');
}

/** Constant-time (secretEquals): neither the content nor the length of the token leaks. */
export function tokenMatches(given: string, token: string): boolean {
  return secretEquals(given, token);
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
