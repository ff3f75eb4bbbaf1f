import { claimedVms, expiredClaims } from '../store/index.js';
import type { VmDeps } from '../vm/index.js';

/** How long a child may sit `releasing` with no release task before the sweeper queues one. */
export const STALE_RELEASE_MS = 30_000;

export interface SweeperHooks {
  everyMs: number;
  /** Releases a claim whose TTL ended (a compare-and-set: a claim released meanwhile is VMFORK_VM_NOT_CLAIMED). */
  expire(vm: string): Promise<unknown>;
  /** Queues again the release of a child left `releasing` with no task (its process died in between). */
  requeue(vm: string, pool: string): Promise<unknown>;
}

/**
 * The server's claim clock: every `everyMs` it releases the claims whose TTL has ended and heals releases a crash
 * cut off. One indexed query per look; a look never overlaps the previous one, and its errors are logged, never
 * thrown (the next look tries again).
 */
export function claimSweeper(deps: VmDeps, hooks: SweeperHooks): { stop(): void } {
  let busy = false;
  const look = async (): Promise<void> => {
    for (const vm of await expiredClaims(deps.db, new Date().toISOString())) {
      await hooks.expire(vm.name).then(
        () => deps.log.info({ vm: vm.name, user: vm.claimed_by, expiredAt: vm.claim_expires_at }, 'claim TTL ended: released'),
        (err: unknown) => deps.log.warn({ vm: vm.name, err }, 'claim TTL ended, but the release was refused'),
      );
    }
    // a release is queued right after its claim moves: only one left alone for a while lost its task
    const stale = Date.now() - STALE_RELEASE_MS;
    for (const vm of (await claimedVms(deps.db)).filter((v) => v.claim_state === 'releasing' && v.pool_name && Date.parse(v.updated_at) < stale)) {
      await hooks.requeue(vm.name, vm.pool_name ?? '');
    }
  };
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    look()
      .catch((err: unknown) => deps.log.warn({ err }, 'claim sweep failed; the next one tries again'))
      .finally(() => (busy = false));
  }, hooks.everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
