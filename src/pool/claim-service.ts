import { VmforkError } from '../errors.js';
import { liveQueueTasks, moveClaim, requirePool, requireVm } from '../store/index.js';
import { vmLock, waitForTask, type Enqueued } from '../task/index.js';
import { waitUntil } from '../util/index.js';
import type { VmDeps } from '../vm/index.js';
import { claimSweeper } from './claim-sweeper.js';
import { ClaimWatch } from './claim-watch.js';
import { poolSpecOf } from './converge.js';
import type { PoolParts } from './parts.js';
import { exhausted, listClaimViews, reserveChild, type ClaimRequest, type ClaimResult, type ClaimView } from './claims.js';
import type { PoolTaskKind } from './runners.js';

/** How the provisioning service queues a task (its `run`): kind, target, queue (null: none), input, lock. */
export type RunTask = (kind: PoolTaskKind, target: string, queue: string | null, input: Record<string, unknown>, lock?: string) => Promise<Enqueued>;

/** Why a claim ended: the user's release, its TTL, or (by pool policy) the guest's logoff or power-off. */
export type ReleaseReason = 'release' | 'ttl' | 'logoff' | 'poweroff';

/** Claim, release and the claim clock: the part of the provisioning service that hands children to users. */
export function createClaimService(deps: VmDeps, run: RunTask, assertNotRemoving: (pool: string) => Promise<void>, parts: Pick<PoolParts, 'watchSessions'>) {
  /** Gives a claimed child back: its claim moves to `releasing` (a compare-and-set), then the refresh is queued. */
  const release = async (vm: string, reason: ReleaseReason): Promise<Enqueued> => {
    const row = await requireVm(deps.db, vm);
    if (!row.pool_name || !(await moveClaim(deps.db, vm, 'claimed', 'releasing'))) {
      throw new VmforkError('VMFORK_VM_NOT_CLAIMED', `VM ${vm} is ${row.pool_name ? row.claim_state : 'outside any pool'}; only a claimed pool child is released`, {
        details: { vm, claim: row.pool_name ? row.claim_state : null, allowed: ['claimed'] },
      });
    }
    return run('vm-release', vm, row.pool_name, { pool: row.pool_name, vm, reason }, vmLock(vm));
  };

  // the guest's side of claims (logoffs, poweroffs), kept by the claim clock; its session lists show in listClaims
  const watch = new ClaimWatch(deps, parts.watchSessions, release);

  return {
    /**
     * Hands out a ready child: a running spare at once, else a registered child forked for the claim (in the pool's
     * queue). The child is reserved (compare-and-set) before any task exists. With nothing free, 409
     * VMFORK_POOL_EXHAUSTED, or a wait of up to `waitSeconds` for a child to come free.
     */
    async claim(pool: string, request: ClaimRequest): Promise<ClaimResult> {
      const t0 = performance.now();
      const spec = poolSpecOf(await requirePool(deps.db, pool));
      await assertNotRemoving(pool);
      if (request.ttlSeconds !== undefined && !spec.release.on.includes('ttl')) {
        throw new VmforkError('VMFORK_INVALID_ARGUMENT', `pool ${pool} does not end claims by TTL (its release.on is ${spec.release.on.join(', ') || 'empty'}); claim without ttlSeconds`, {
          details: { field: 'ttlSeconds', pool, releaseOn: spec.release.on },
        });
      }
      const fields = { user: request.user ?? null, expiresAt: request.ttlSeconds ? new Date(Date.now() + request.ttlSeconds * 1000).toISOString() : null };
      const waitMs = (request.waitSeconds ?? 0) * 1000;
      const picked = await waitUntil(async () => (await reserveChild(deps.db, pool, fields)) ?? (waitMs === 0 ? ('none' as const) : undefined), {
        deadlineMs: waitMs,
        everyMs: 250,
        what: `a child of pool ${pool} to come free`,
      }).catch((err: unknown) => {
        if (err instanceof VmforkError && err.code === 'VMFORK_TIMEOUT') return 'none' as const;
        throw err;
      });
      if (picked === 'none') throw await exhausted(deps.db, pool, request.waitSeconds ?? 0);
      // a spare is the child alone (a compare-and-set on its claim): it need not wait behind the converge forking
      // the next spare; a fork runs in the pool's queue under the child's lock, as a power-on does
      const input = { pool, vm: picked.vm, how: picked.how, user: fields.user };
      const accepted = await run('pool-claim', picked.vm, picked.how === 'spare' ? null : pool, input, vmLock(picked.vm));
      const done = await waitForTask(deps, accepted.taskId);
      if (done.state !== 'succeeded') {
        throw new VmforkError((done.lastError?.code as 'VMFORK_FORK_FAILED' | undefined) ?? 'VMFORK_FORK_FAILED', `claim of ${picked.vm} in pool ${pool}: ${done.lastError?.message ?? done.state}`, {
          details: { pool, vm: picked.vm, taskId: accepted.taskId },
        });
      }
      return { ...(done.result as ClaimView), how: picked.how, tookMs: Math.round(performance.now() - t0), taskId: accepted.taskId };
    },

    /** Gives a claimed child back: refreshed (a non-persistent pool) or its disposable disk reset (persistent). */
    releaseVm: (vm: string): Promise<Enqueued> => release(vm, 'release'),

    listClaims: async (pool?: string): Promise<ClaimView[]> => (await listClaimViews(deps.db, pool)).map((c) => ({ ...c, sessions: watch.sessionsOf(c.vm) })),

    /** Releases claims whose TTL ended, and queues again a release a crash left without its task; stop() ends it. */
    startClaimSweeper: (everyMs = 1_000): { stop(): void } =>
      claimSweeper(deps, {
        everyMs,
        expire: (vm) => release(vm, 'ttl'),
        watch,
        requeue: async (vm, pool) => {
          const live = (await liveQueueTasks(deps.db, pool)).some((t) => t.kind === 'vm-release' && t.target === vm);
          if (!live) await run('vm-release', vm, pool, { pool, vm, reason: 'recovered' }, vmLock(vm));
        },
      }),
  };
}
