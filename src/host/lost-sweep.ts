import { dialectOf, sweepLostHosts, transition, vmsOnHost, type Db } from '../store/index.js';
import type { Logger } from '../util/index.js';
import { actorFor } from './self.js';

/** How often a server looks for hosts whose heartbeats stopped (each host's own threshold decides). */
export const LOST_SWEEP_MS = 5_000;

/**
 * Finds hosts whose heartbeats stopped (`lost`, each by its own agent's rule), and makes their VMs that were running,
 * paused or warm `unknown`: nobody here can tell whether their QEMU still runs, and no one may act on them as if it
 * did or did not, until the host's agent, back, says (reconcileUnknownVms). Returns the hosts found lost now.
 */
export async function sweepLost(db: Db, log: Logger): Promise<string[]> {
  const lost = await sweepLostHosts(db);
  for (const host of lost) {
    log.warn({ host }, 'host lost: its heartbeats stopped');
    const actor = await actorFor('host-lost');
    for (const vm of await vmsOnHost(db, host, ['running', 'paused', 'warm'])) {
      // a VM that moved meanwhile (its agent's last act): left to it
      await transition(db, 'vms', vm.name, vm.state, 'unknown', actor, { last_error: `host ${host} lost (its heartbeats stopped) while the VM was ${vm.state}` }).catch(() => undefined);
    }
  }
  return lost;
}

/**
 * A server on a shared PostgreSQL store also finds lost hosts, so a fleet whose agents all died is still seen to be
 * lost (docs/hosts.md). Nothing on SQLite: there are no agents' hosts there. A failed sweep (the database away for a
 * moment) is tried again at the next tick. `afterEach` runs after each sweep: the server's rebuild of placed pools'
 * lost capacity (src/pool/, docs/placement.md).
 */
export function startLostHostSweep(db: Db, log: Logger, everyMs = LOST_SWEEP_MS, afterEach?: () => Promise<unknown>): { stop(): void } | undefined {
  if (dialectOf(db) !== 'postgres') return undefined;
  const timer = setInterval(() => {
    sweepLost(db, log)
      .then(() => afterEach?.())
      .catch((err: unknown) => log.warn({ err }, 'lost-host sweep failed'));
  }, everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
