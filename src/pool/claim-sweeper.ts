import { claimedVms, expiredClaims, requirePool } from '../store/index.js';
import type { VmDeps } from '../vm/index.js';
import type { ClaimWatch, WatchedClaim } from './claim-watch.js';
import { poolSpecOf } from './converge.js';

/** How long a child may sit `releasing` with no release task before the sweeper queues one. */
export const STALE_RELEASE_MS = 30_000;

export interface SweeperHooks {
  everyMs: number;
  /** Releases a claim whose TTL ended (a compare-and-set: a claim released meanwhile is VMFORK_VM_NOT_CLAIMED). */
  expire(vm: string): Promise<unknown>;
  /** Queues again the release of a child left `releasing` with no task (its process died in between). */
  requeue(vm: string, pool: string): Promise<unknown>;
  /** The guest's side: poweroffs and logoffs (claim-watch.ts). */
  watch: ClaimWatch;
}

/**
 * The server's claim clock: every `everyMs` it releases the claims whose TTL has ended and heals releases a crash
 * cut off. One indexed query per look; a look never overlaps the previous one, and its errors are logged, never
 * thrown (the next look tries again).
 */
export function claimSweeper(deps: VmDeps, hooks: SweeperHooks): { stop(): void } {
  let busy = false;
  const look = async (): Promise<void> => {
    const claims: WatchedClaim[] = [];
    const specs = new Map<string, ReturnType<typeof poolSpecOf>>();
    for (const vm of await claimedVms(deps.db)) {
      if (!vm.pool_name) continue;
      const spec = specs.get(vm.pool_name) ?? poolSpecOf(await requirePool(deps.db, vm.pool_name));
      specs.set(vm.pool_name, spec);
      claims.push({ vm, on: spec.release.on, graceSeconds: spec.release.graceSeconds });
    }
    for (const vm of await expiredClaims(deps.db, new Date().toISOString())) {
      // a pool whose policy leaves TTLs out never gave its claims one (the claim was refused): nothing to end
      if (!claims.find((c) => c.vm.name === vm.name)?.on.includes('ttl')) continue;
      await hooks.expire(vm.name).then(
        () => deps.log.info({ vm: vm.name, user: vm.claimed_by, expiredAt: vm.claim_expires_at }, 'claim TTL ended: released'),
        (err: unknown) => deps.log.warn({ vm: vm.name, err }, 'claim TTL ended, but the release was refused'),
      );
    }
    await hooks.watch.sync(claims);
    // a release is queued right after its claim moves: only one left alone for a while lost its task
    const stale = Date.now() - STALE_RELEASE_MS;
    for (const { vm } of claims.filter((c) => c.vm.claim_state === 'releasing' && Date.parse(c.vm.updated_at) < stale)) {
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
  return {
    stop: () => {
      clearInterval(timer);
      hooks.watch.stopAll();
    },
  };
}
