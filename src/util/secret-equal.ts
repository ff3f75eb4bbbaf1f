import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/**
 * Constant-time comparison of a secret someone sent with the one we hold: the sha256 digests (always 32 bytes) are
 * compared, so neither the content nor the length of the secret leaks through the time the answer takes.
 */
export function secretEquals(given: string, secret: string): boolean {
  return timingSafeEqual(digest(given), digest(secret));
}
