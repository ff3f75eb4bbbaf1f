import { VmforkError } from '../errors.js';
import { actorFor } from '../host/index.js';
import { deletePoolRow, getPool, poolVms, requirePool, transition, updatePool, type PoolRow, type VmRow } from '../store/index.js';
import { reconcileVm, type VmDeps } from '../vm/index.js';
import { poolCustomizer } from '../customize/index.js';
import { MAX_FORK_COUNT, readyMsOf } from '../fork/index.js';
import { parsePoolSpec, poolChildNames, type PoolSpec } from './spec.js';
import type { TaskContext } from '../task/index.js';
import { REAL_PARTS, type PoolForked, type PoolParts } from './parts.js';
import { convergePlaced } from './placed.js';
import { childFailure, type ConvergeResult } from './converge-result.js';
import { faultPoint } from '../util/index.js';

/** The spec a pool row holds (parsed when it was accepted; read back through the same schema). */
export function poolSpecOf(row: PoolRow): PoolSpec {
  return parsePoolSpec(JSON.parse(row.spec_json));
}

/** States of a child that counts as made (forked, or its disks kept while powered off). */
export const ACTIVE = new Set<VmRow['state']>(['creating', 'forking', 'starting', 'running', 'paused', 'stopping', 'stopped']);

/**
 * A child that counts as made: forked (or its disks kept while off), or reserved by a claim whose task is about to
 * fork it — counted as claimed, it must count as made too, or a converge would fork an extra spare for it.
 */
export function isMade(v: Pick<VmRow, 'state' | 'claim_state'>): boolean {
  return ACTIVE.has(v.state) || v.claim_state !== 'unclaimed';
}

/**
 * How many children must be forked (the rest are pre-registered): up-front pools fork all `max`; on-demand ones
 * fork `min`, and more while fewer than `spares` forked children are unclaimed.
 */
export function targetActive(spec: PoolSpec, claimed: number): number {
  if (spec.provisioning === 'up-front') return spec.size.max;
  return Math.min(spec.size.max, Math.max(spec.size.min, claimed + spec.size.spares));
}

export type { ConvergeResult } from './converge-result.js';

/**
 * Brings a pool to its spec, from wherever it is — a new pool, a resize, or a task run again after the server died:
 * 1. the replica (phase 1 on an internal clone + full copy), reused from the replica map when one exists;
 * 2. the replica's template in the pool's shape;
 * 3. children: forked (up-front: all; on-demand: `min` plus spares), pre-registered (on-demand beyond that),
 *    registered ones forked to top up spares, and children beyond `max` destroyed.
 * Every step finds what is already done. `stopOnError` stops at the first child error; the pool is left consistent
 * (failed children rolled back, the others kept) and `failed`.
 */
export async function convergePool(deps: VmDeps, name: string, ctx: TaskContext, parts: PoolParts = REAL_PARTS): Promise<ConvergeResult> {
  const actor = await actorFor('pool');
  const pool = await requirePool(deps.db, name);
  if (pool.state !== 'provisioning') await transition(deps.db, 'pools', name, pool.state, 'provisioning', actor, { task_id: ctx.id, last_error: null });
  else await updatePool(deps.db, name, { task_id: ctx.id });
  const spec = poolSpecOf(pool);
  try {
    // placed over the fleet's hosts: each host's part by its agent (placed.ts); then the same verdict as here
    const out = spec.placement ? await convergePlaced(deps, spec, ctx) : await convergeHere(deps, spec, ctx, parts);
    ctx.signal.throwIfAborted();
    if (out.failed.length) {
      const first = out.failed[0];
      const why = `${out.failed.length} child(ren) failed; first ${first?.name}: ${first?.message ?? ''}`;
      await transition(deps.db, 'pools', name, 'provisioning', 'failed', actor, { last_error: why });
      throw new VmforkError((first?.code as 'VMFORK_FORK_FAILED' | undefined) ?? 'VMFORK_FORK_FAILED', `pool ${name}: ${why}`, { details: { ...out } });
    }
    faultPoint('converge.children-done');
    await transition(deps.db, 'pools', name, 'provisioning', 'ready', actor);
    await ctx.step('ready', 100);
    return out;
  } catch (err) {
    if (ctx.signal.aborted) return cancelled(deps, name, ctx, err, parts);
    const now = await getPool(deps.db, name);
    // a create that failed before any child exists leaves nothing behind: the name is free to try again, and the
    // task keeps the error (a replica or template it made stays: both are shared, reusable caches)
    if (ctx.kind === 'pool-create' && now && (await poolVms(deps.db, name)).length === 0) {
      await deletePoolRow(deps.db, name);
      await ctx.event('pool', `pool ${name} not created: ${(err as Error).message.split('\n')[0] ?? ''}`);
      throw err;
    }
    if (now?.state === 'provisioning') await transition(deps.db, 'pools', name, 'provisioning', 'failed', actor, { last_error: (err as Error).message.split('\n')[0] ?? null });
    throw err;
  }
}

/** Replica, template and children on this host (the server's own): steps 1 to 3 of convergePool. */
async function convergeHere(deps: VmDeps, spec: PoolSpec, ctx: TaskContext, parts: PoolParts): Promise<ConvergeResult> {
  const name = spec.name;
  const t0 = performance.now();
  await ctx.step('replica', 2);
  const report = { step: (n: string, p?: number) => ctx.step(n, p), event: (k: string, m: string, d?: Record<string, unknown>) => ctx.event(k, m, d), signal: ctx.signal };
  const { replica, reused } = await parts.ensureReplica(deps, spec, report);
  ctx.signal.throwIfAborted();
  await updatePool(deps.db, name, { replica_id: replica.id });
  faultPoint('converge.replica-linked');
  const t1 = performance.now();
  await ctx.step('template', 55);
  const template = await parts.ensureReplicaTemplate(deps, replica, spec, report);
  ctx.signal.throwIfAborted();
  await updatePool(deps.db, name, { template_name: template.row.name });
  faultPoint('converge.template-linked');
  const t2 = performance.now();
  await ctx.step('children', 65);
  const result = await convergeChildren(deps, spec, template.row.name, ctx, parts);
  // a cancel between children: those made stay (a resize) or go (a create, below); the half-made one was rolled back
  ctx.signal.throwIfAborted();
  const ms = { replica: Math.round(t1 - t0), template: Math.round(t2 - t1), children: Math.round(performance.now() - t2) };
  const phase1 = replica.phase1_json ? (JSON.parse(replica.phase1_json) as { reboots?: number }) : {};
  return { replica: replica.id, replicaReused: reused, phase1Reboots: phase1.reboots ?? null, template: template.row.name, ...result, ms };
}

/**
 * A cancelled converge leaves its pool consistent: a create leaves nothing (its children destroyed, the record
 * removed, as a create that failed before any child); any other keeps the children it made and is `failed`, saying
 * so, until a resize or converge completes it. Replicas and templates made stay: shared, reusable caches.
 */
async function cancelled(deps: VmDeps, name: string, ctx: TaskContext, err: unknown, parts: PoolParts): Promise<never> {
  const actor = await actorFor('pool');
  const now = await getPool(deps.db, name);
  const made = now ? await poolVms(deps.db, name) : [];
  if (ctx.kind === 'pool-create' && now) {
    for (const vm of made) {
      await parts.destroyVm(deps, vm.name);
      await ctx.child(vm.name, { state: 'removed', percent: 100 });
    }
    await deletePoolRow(deps.db, name);
    await ctx.event('pool', `pool ${name} not created: cancelled (${made.length} child(ren) made were destroyed)`);
  } else if (now?.state === 'provisioning') {
    await transition(deps.db, 'pools', name, 'provisioning', 'failed', actor, { last_error: `task ${ctx.id} (${ctx.kind}) cancelled with ${made.length} child(ren)` });
    await ctx.event('pool', `pool ${name}: cancelled; the ${made.length} child(ren) made stay`);
  }
  throw err;
}

async function convergeChildren(deps: VmDeps, spec: PoolSpec, template: string, ctx: TaskContext, parts: PoolParts): Promise<Omit<ConvergeResult, 'replica' | 'replicaReused' | 'phase1Reboots' | 'template' | 'ms'>> {
  const names = poolChildNames(spec).slice(0, spec.size.max);
  const wanted = new Set(names);
  const out: Omit<ConvergeResult, 'replica' | 'replicaReused' | 'phase1Reboots' | 'template' | 'ms'> = { forked: [], readyMs: {}, registered: [], removed: [], failed: [] };
  let children = await poolVms(deps.db, spec.name);
  // shrink: children past the new max go first (the names a resize dropped)
  for (const vm of children.filter((v) => !wanted.has(v.name))) {
    await parts.destroyVm(deps, vm.name);
    out.removed.push(vm.name);
    await ctx.child(vm.name, { state: 'removed', percent: 100 });
  }
  // a warm child whose QEMU died is failed: it goes, and its name is registered again below
  for (const vm of children.filter((v) => v.state === 'warm')) {
    if ((await reconcileVm(deps, vm)).state !== 'failed') continue;
    await parts.destroyVm(deps, vm.name);
    await ctx.event('warm', `${vm.name}: its warm QEMU had exited; registered again`);
  }
  children = await poolVms(deps.db, spec.name);
  const has = new Set(children.map((v) => v.name));
  const claimed = children.filter((v) => v.claimed_at !== null).length;
  let active = children.filter(isMade).length;
  const target = targetActive(spec, claimed);
  const customize = poolCustomizer(spec);
  const track = (c: PoolForked | { name: string; error: VmforkError }): void => {
    if ('error' in c) {
      const failure = childFailure(c.name, c.error);
      out.failed.push(failure);
      void ctx.child(c.name, { state: 'failed', percent: 100, error: failure.message });
    } else {
      out.forked.push(c.name);
      out.readyMs[c.name] = readyMsOf(c.timings);
      void ctx.child(c.name, { state: 'running', percent: 100 });
    }
  };
  // top up from the pre-registered children first (warm ones first: only a resume left): their names, addresses
  // and overlays are already reserved; one a claim reserved is the claim's to fork
  const waiting = children.filter((v) => (v.state === 'warm' || v.state === 'registered') && v.claim_state === 'unclaimed');
  for (const vm of [...waiting.filter((v) => v.state === 'warm'), ...waiting.filter((v) => v.state === 'registered')]) {
    if (active >= target || (spec.stopOnError && out.failed.length) || ctx.signal.aborted) break;
    await ctx.child(vm.name, { state: 'forking', percent: 10 });
    try {
      track(await parts.forkRegistered(deps, vm.name, { ...(customize ? { customize } : {}), signal: ctx.signal }));
      active += 1;
    } catch (err) {
      track({ name: vm.name, error: err as VmforkError });
    }
  }
  const missing = names.filter((n) => !has.has(n));
  const toFork = missing.slice(0, Math.max(0, target - active));
  const toRegister = missing.slice(toFork.length);
  const base = { template, network: spec.network, pool: spec.name };
  if (!(spec.stopOnError && out.failed.length)) for (const n of toFork) await ctx.child(n, { state: 'queued', percent: 0 });
  // one fork batch takes at most MAX_FORK_COUNT children: a larger pool is forked (and registered) batch by batch
  for (const [i, names] of batches(toFork).entries()) {
    // the first batch sees a cancel itself (as one batch always did); later ones are not started
    if ((spec.stopOnError && out.failed.length) || (i > 0 && ctx.signal.aborted)) break;
    const batch = await parts.forkChildren(deps, {
      ...base,
      count: names.length,
      names,
      stopOnError: spec.stopOnError,
      signal: ctx.signal,
      ...(customize ? { customize } : {}),
      onStart: (n) => void ctx.child(n, { state: 'forking', percent: 10 }),
      onChild: track,
    });
    for (const s of batch.skipped) await ctx.child(s, { state: 'skipped', percent: 100, error: 'an earlier child failed (stopOnError)' });
  }
  for (const names of batches(toRegister)) {
    if ((spec.stopOnError && out.failed.length) || ctx.signal.aborted) break;
    const batch = await parts.forkChildren(deps, { ...base, count: names.length, names, registerOnly: true, onChild: track });
    out.registered.push(...batch.registered);
    for (const n of batch.registered) await ctx.child(n, { state: 'registered', percent: 100 });
  }
  if (!ctx.signal.aborted) await keepWarm(deps, spec, ctx, parts);
  return out;
}

/** `names` in runs of at most one fork batch. */
export function batches<T>(names: readonly T[], size: number = MAX_FORK_COUNT): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < names.length; i += size) out.push(names.slice(i, i + size));
  return out;
}

/**
 * `size.warm`: keeps that many registered children launched at -incoming defer (their own overlays, MAC and
 * address), so a claim that must fork only resumes one. A launch that fails is an event, not a failed converge:
 * the child stays registered and is forked cold when claimed. Surplus warm children (a smaller size.warm) are left
 * to be claimed.
 */
async function keepWarm(deps: VmDeps, spec: PoolSpec, ctx: TaskContext, parts: PoolParts): Promise<void> {
  const vms = await poolVms(deps.db, spec.name);
  let warm = vms.filter((v) => v.state === 'warm').length;
  for (const vm of vms.filter((v) => v.state === 'registered' && v.claim_state === 'unclaimed')) {
    if (warm >= spec.size.warm) break;
    try {
      await parts.warmRegistered(deps, vm.name);
      warm += 1;
      await ctx.child(vm.name, { state: 'warm', percent: 100 });
    } catch (err) {
      await ctx.event('warm', `${vm.name}: not kept warm: ${(err as Error).message.split('\n')[0] ?? ''}`);
    }
  }
}
