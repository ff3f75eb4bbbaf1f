import type { FastifyRequest } from 'fastify';
import { isVmforkError, VmforkError } from '../errors.js';
import { secretEquals } from '../util/index.js';

/**
 * Whether the request carries a valid console session (its cookie), supplied by whoever owns sessions (the API), so
 * this room need not import it. False: no session (401 VMFORK_AUTH_REQUIRED); a VmforkError it throws (an expired
 * session's) is the answer as it is.
 */
export type SessionCheck = (req: FastifyRequest) => Promise<boolean>;

/**
 * Who may scrape: `Authorization: Bearer` with the API token or the scrape token, else a console session. Undefined
 * when the request may; otherwise the error to answer with: 401 without credentials, 403 with a wrong token.
 */
export async function scrapeRefusal(req: FastifyRequest, tokens: readonly string[], sessionValid?: SessionCheck): Promise<VmforkError | undefined> {
  const header = req.headers.authorization;
  if (header !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m?.[1]) return new VmforkError('VMFORK_AUTH_REQUIRED', 'send "Authorization: Bearer TOKEN" with the token from the server\'s <home>/metrics-token (or <home>/api-token)');
    const given = m[1];
    // every token is compared, so the time taken does not say which one came close
    const matches = tokens.map((t) => secretEquals(given, t));
    return matches.includes(true) ? undefined : new VmforkError('VMFORK_AUTH_INVALID', "the bearer token matches neither this server's <home>/metrics-token nor its <home>/api-token");
  }
  if (sessionValid) {
    try {
      if (await sessionValid(req)) return undefined;
    } catch (err) {
      if (isVmforkError(err)) return err;
      throw err;
    }
  }
  return new VmforkError('VMFORK_AUTH_REQUIRED', 'send "Authorization: Bearer TOKEN" with the token from the server\'s <home>/metrics-token (or log in to the console)');
}
