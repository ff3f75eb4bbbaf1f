import { actorFor } from '../host/index.js';
import { DISPOSABLE_DISK, poolCustomizer } from '../customize/index.js';
import { VmforkError } from '../errors.js';
import { deletePoolRow, getPool, getVm, moveClaim, poolVms, requirePool, requireVm, transition, updatePool } from '../store/index.js';
import type { Enqueued, TaskContext, TaskRunners } from '../task/index.js';
import { hereHost, type VmDeps } from '../vm/index.js';
import { onItsHost } from './placed.js';
import { claimView } from './claims.js';
import { advancePush, runPush } from './push.js';
import { convergePool, poolSpecOf } from './converge.js';
import { REAL_PARTS, type PoolParts } from './parts.js';
import { powerOff, powerOn } from './power.js';
import { parsePoolSpec } from './spec.js';
import { faultPoint } from '../util/index.js';

/** Task kinds of the pool layer: a server registers these runners to resume tasks after a crash. */
export const POOL_TASKS = ['pool-create', 'pool-resize', 'pool-converge', 'pool-remove', 'vm-power-on', 'vm-power-off', 'pool-claim', 'vm-release', 'pool-update'] as const;
export type PoolTaskKind = (typeof POOL_TASKS)[number];

/** Queues a follow-up converge of a pool (after a power operation); the caller's queue is the pool's own. */
export type EnqueueConverge = (pool: string, why: string) => Promise<Enqueued>;

/**
 * The runners of the pool layer. Each is idempotent (a restarted server runs it again in resume mode) and runs in
 * its pool's queue, so none of them meets another converge of the same pool.
 */
export function poolRunners(deps: VmDeps, enqueueConverge: EnqueueConverge, parts: PoolParts = REAL_PARTS): Record<PoolTaskKind, TaskRunners[string]> {
  const converge = (ctx: TaskContext) => convergePool(deps, ctx.target, ctx, parts) as unknown as Promise<Record<string, unknown>>;

  /** A pool that asked for more children after a power operation gets them from its own queue, never inline. */
  const followUp = async (vm: string, ctx: TaskContext, why: string): Promise<Record<string, unknown>> => {
    const pool = (await requireVm(deps.db, vm).catch(() => undefined))?.pool_name ?? ctx.input.pool;
    if (typeof pool !== 'string') return {};
    const row = await getPool(deps.db, pool);
    if (!row || row.state === 'deleting') return {};
    const next = await enqueueConverge(pool, why);
    await ctx.event('queue', `pool ${pool}: converge queued as task ${next.taskId} (${why})`, { followUp: next.taskId });
    return { followUp: next.taskId };
  };

  return {
    'pool-create': converge,
    'pool-converge': converge,
    'pool-resize': async (ctx) => {
      // the new size is applied when the task's turn comes, so a resize queued behind another sees the pool as
      // that one left it; it was checked when it was asked for, and is checked again against the spec now
      const row = await getPool(deps.db, ctx.target);
      if (row && typeof ctx.input.max === 'number') {
        const spec = poolSpecOf(row);
        const resized = parsePoolSpec({ ...spec, size: { ...spec.size, max: ctx.input.max } });
        await updatePool(deps.db, ctx.target, { spec_json: JSON.stringify(resized) });
      }
      return converge(ctx);
    },
    'pool-remove': async (ctx) => {
      const actor = await actorFor('pool');
      const row = await getPool(deps.db, ctx.target);
      if (!row) return { pool: ctx.target, removed: [] };
      if (row.state !== 'deleting') await transition(deps.db, 'pools', row.name, row.state, 'deleting', actor, { task_id: ctx.id });
      const removed: string[] = [];
      await ctx.step('children', 10);
      faultPoint('pool-remove.deleting');
      for (const vm of await poolVms(deps.db, row.name)) {
        await parts.destroyVm(deps, vm.name);
        removed.push(vm.name);
        faultPoint('pool-remove.child-destroyed');
        await ctx.child(vm.name, { state: 'removed', percent: 100 });
      }
      await deletePoolRow(deps.db, row.name);
      await ctx.step('removed', 100);
      return { pool: row.name, removed, replicaKept: row.replica_id };
    },
    'vm-power-on': async (ctx) => {
      await ctx.step('power on', 10);
      const r = await powerOn(deps, ctx.target, parts);
      await ctx.child(ctx.target, { state: r.state, percent: 100 });
      // an on-demand pool tops its spares up after a child was taken
      const more = r.action === 'forked' || r.action === 'claimed' ? await followUp(ctx.target, ctx, `spares after ${ctx.target} was powered on`) : {};
      return { ...r, ...more };
    },
    'vm-power-off': async (ctx) => {
      await ctx.step('power off', 10);
      const pool = (await requireVm(deps.db, ctx.target)).pool_name;
      const r = await powerOff(deps, ctx.target, parts);
      await ctx.child(ctx.target, { state: r.state, percent: 100 });
      // a refreshed (non-persistent) child is registered again by its pool's next converge
      const more = pool && r.action === 'refreshed' ? await followUp(ctx.target, { ...ctx, input: { ...ctx.input, pool } }, `${ctx.target} refreshed`) : {};
      return { ...r, ...more };
    },
    'pool-claim': async (ctx) => {
      // the service reserved the child (claim state `claimed`) before queueing this: it is this claim's alone
      const vm = String(ctx.input.vm);
      await ctx.step('claim', 10);
      const row = await requireVm(deps.db, vm);
      if (row.state === 'registered' || row.state === 'warm') {
        await ctx.child(vm, { state: 'forking', percent: 10 });
        faultPoint('claim.reserved');
        const customize = poolCustomizer(poolSpecOf(await requirePool(deps.db, String(ctx.input.pool))));
        try {
          await parts.forkRegistered(deps, vm, { ...(customize ? { customize } : {}), signal: ctx.signal });
        } catch (err) {
          // the fork rolled the child back (its row is gone) or never touched it: either way the claim ends
          await moveClaim(deps.db, vm, 'claimed', 'unclaimed').catch(() => false);
          throw err;
        }
      } else if (row.state !== 'running') {
        await moveClaim(deps.db, vm, 'claimed', 'unclaimed').catch(() => false);
        throw new VmforkError('VMFORK_VM_STATE', `claimed child ${vm} is ${row.state}, not running`, { details: { vm, state: row.state, allowed: ['running', 'registered'] } });
      }
      await ctx.child(vm, { state: 'running', percent: 100 });
      // the pool tops its spares up after each claim, in its own queue
      const more = await followUp(vm, ctx, `spares after ${vm} was claimed`);
      return { ...(await claimView(deps.db, await requireVm(deps.db, vm))), how: ctx.input.how, ...more };
    },
    'pool-update': (ctx) => runPush(deps, ctx, parts),
    'vm-release': async (ctx) => {
      // the service moved the claim to `releasing`; run again after a crash, each branch finds what is done
      const vm = String(ctx.input.vm);
      const pool = await requirePool(deps.db, String(ctx.input.pool));
      const spec = poolSpecOf(pool);
      const row = await getVm(deps.db, vm);
      // a second release of one claim (the sweeper's, after a crash) finds the first one's work done
      if (row && row.claim_state !== 'releasing') return { vm, pool: pool.name, reason: ctx.input.reason ?? 'release', action: 'none' };
      let action = 'gone';
      if (row && pool.template_name) {
        await ctx.step(spec.persistent ? 'reset disposable disk' : 'refresh', 10);
        await ctx.child(vm, { state: 'forking', percent: 10 });
        const customize = poolCustomizer(spec);
        const opts = { ...(customize ? { customize } : {}), signal: ctx.signal };
        try {
          if (spec.persistent) {
            // /home is the user's and the system disk keeps their machine: only /tmp and swap start empty
            if (row.state === 'running' || row.state === 'paused') await parts.stopVm(deps, vm);
            faultPoint('release.stopped');
            if ((await requireVm(deps.db, vm)).state === 'stopped') await parts.resetDisks(deps, vm, pool.template_name, [DISPOSABLE_DISK]);
            faultPoint('release.disposable-reset');
            await parts.bootStopped(deps, await requireVm(deps.db, vm));
            action = 'disposable reset, booted';
          } else {
            if (row.state === 'registered') await parts.forkRegistered(deps, vm, opts);
            // a placed pool's child on another host is forked again there, by its agent, from that host's template
            else if (row.host_id !== hereHost(deps)) await onItsHost(deps, row, { op: 'pool-child-refresh', pool: pool.name, name: row.name }, ctx.signal);
            else await parts.refreshChild(deps, vm, pool.template_name, opts);
            action = 'refreshed';
          }
        } finally {
          await moveClaim(deps.db, vm, 'releasing', 'unclaimed').catch(() => false);
        }
        await ctx.child(vm, { state: 'running', percent: 100 });
      }
      // a push waiting for its claimed children to come back moves on (and retires the old replica after the last)
      await advancePush(deps, pool.name, parts);
      // a child the refresh lost (rolled back) is registered again by the pool's converge
      const more = row && action !== 'gone' ? {} : await followUp(vm, { ...ctx, input: { ...ctx.input, pool: pool.name } }, `${vm} released`);
      return { vm, pool: pool.name, reason: ctx.input.reason ?? 'release', action, ...more };
    },
  };
}
