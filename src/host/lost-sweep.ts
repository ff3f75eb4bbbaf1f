import { dialectOf, sweepLostHosts, type Db } from '../store/index.js';
import type { Logger } from '../util/index.js';

/** How often a server looks for hosts whose heartbeats stopped (each host's own threshold decides). */
export const LOST_SWEEP_MS = 5_000;

/**
 * A server on a shared PostgreSQL store also finds lost hosts, so a fleet whose agents all died is still seen to be
 * lost (docs/hosts.md). Nothing on SQLite: there are no agents' hosts there. A failed sweep (the database away for a
 * moment) is tried again at the next tick.
 */
export function startLostHostSweep(db: Db, log: Logger, everyMs = LOST_SWEEP_MS): { stop(): void } | undefined {
  if (dialectOf(db) !== 'postgres') return undefined;
  const timer = setInterval(() => {
    sweepLostHosts(db).then(
      (lost) => lost.forEach((host) => log.warn({ host }, 'host lost: its heartbeats stopped')),
      (err: unknown) => log.warn({ err }, 'lost-host sweep failed'),
    );
  }, everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
