import { poolCustomizer } from '../customize/index.js';
import { forkChildren, readyMsOf, refreshChild, type ChildCustomizer } from '../fork/index.js';
import { VmforkError } from '../errors.js';
import { lazyChildHere, type LazyChild } from './lazy-steps.js';
import { childFailure, parsePoolSpec, type ChildFailure } from '../pool/index.js';
import { ensureReplica, ensureReplicaTemplate } from '../replica/index.js';
import { getVm, poolVms, requirePool } from '../store/index.js';
import { destroyVm } from '../vm/index.js';
import { receiveReplicaHere, reporter } from './replica-steps.js';
import type { StepContext } from './step-context.js';

/**
 * A placed pool's part on this host (src/pool/placed.ts): the pool's replica here (the server had it received
 * first, so the replica map finds it by its key), the replica's template here, and these children forked from it
 * with the pool's phase 2. Run again, each finds its own work: the replica and template by key and name, and the
 * children already running here are not forked again.
 */
export async function convergePoolHere(ctx: StepContext, pool: string, names: string[], signal: AbortSignal, lazyFrom?: { host: string; replica: string }): Promise<Record<string, unknown>> {
  const { deps } = ctx;
  const t0 = performance.now();
  const spec = parsePoolSpec(JSON.parse((await requirePool(deps.db, pool)).spec_json));
  const customize = poolCustomizer(spec);
  const running = new Set((await poolVms(deps.db, pool)).filter((v) => v.host_id === deps.hostId && v.state === 'running').map((v) => v.name));
  const todo = names.filter((n) => !running.has(n));
  const readyMs: Record<string, number> = {};
  const forked = names.filter((n) => running.has(n));
  const failed: ChildFailure[] = [];
  // no replica here yet: the first child starts at once from the source's template, the copy follows (item 8)
  const lazy = lazyFrom && todo.length && !running.size ? await lazyFirst(ctx, { pool, name: todo[0] as string, lazyFrom, signal, ...(customize ? { customize } : {}) }) : undefined;
  if (lazy?.child) {
    forked.push(lazy.child.child.name);
    readyMs[lazy.child.child.name] = readyMsOf(lazy.child.child.timings);
    todo.shift();
  }
  const firstMs = lazy?.child ? Math.round(performance.now() - t0) : undefined;
  if (lazyFrom) await receiveReplicaHere(ctx, lazyFrom.replica, spec.datastore);
  const { replica } = await ensureReplica(deps, spec, reporter(ctx, 'pool-host-converge'));
  const template = await ensureReplicaTemplate(deps, replica, spec, reporter(ctx, 'pool-host-converge'));
  let firstAt: number | undefined;
  if (todo.length) {
    const r = await forkChildren(deps, {
      onChild: (c) => void ('timings' in c && (firstAt ??= Math.round(performance.now() - t0))),
      template: template.row.name,
      count: todo.length,
      names: todo,
      network: spec.network,
      pool,
      stopOnError: spec.stopOnError,
      signal,
      ...(customize ? { customize } : {}),
    });
    for (const c of r.children) {
      forked.push(c.name);
      readyMs[c.name] = readyMsOf(c.timings);
    }
    for (const f of r.failed) failed.push(childFailure(f.name, f.error));
    for (const s of r.skipped) failed.push({ name: s, code: 'VMFORK_FORK_FAILED', message: 'not forked: an earlier child failed (stopOnError)' });
  }
  const settled = lazy?.child ? await settleOrDrop(ctx, lazy.child, forked, failed) : undefined;
  const lazyOut = lazy ? { ...(lazy.child ? { name: lazy.child.child.name, fromHost: lazy.child.fromHost, firstReadyMs: firstMs, settled } : {}), ...(lazy.skipped ? { skipped: lazy.skipped } : {}) } : undefined;
  return { host: deps.hostId, replica: replica.id, template: template.row.name, forked, readyMs, failed, ...(lazyOut ? { lazy: lazyOut } : {}), firstReadyMs: firstMs ?? firstAt ?? null };
}

/**
 * A placed pool's child on this host refreshed after its claim was released (src/pool/runners.ts): forked again,
 * under its name and address, from this host's template of the pool's replica (found by key and name, as a
 * converge finds them), with the pool's phase 2. The refresh is a compare-and-set from `running`; an agent that
 * dies in it leaves a row the next one rolls back, and the pool's converge makes the child again.
 */
export async function refreshPoolChildHere(ctx: StepContext, pool: string, name: string, signal: AbortSignal): Promise<Record<string, unknown>> {
  const { deps } = ctx;
  const spec = parsePoolSpec(JSON.parse((await requirePool(deps.db, pool)).spec_json));
  const vm = await getVm(deps.db, name);
  if (!vm || vm.host_id !== deps.hostId || vm.pool_name !== pool) {
    throw new VmforkError('VMFORK_VM_NOT_FOUND', `host ${deps.hostId} has no child ${name} of pool ${pool}`, { details: { vm: name, pool, host: deps.hostId } });
  }
  const { replica } = await ensureReplica(deps, spec, reporter(ctx, 'pool-child-refresh'));
  const template = await ensureReplicaTemplate(deps, replica, spec, reporter(ctx, 'pool-child-refresh'));
  const customize = poolCustomizer(spec);
  const child = await refreshChild(deps, name, template.row.name, { signal, ...(customize ? { customize } : {}) });
  return { name, host: deps.hostId, template: template.row.name, readyMs: readyMsOf(child.timings) };
}

/**
 * Waits for the lazy child to hold all its memory and disks. One whose source failed first cannot go on (its pages
 * or blocks are gone with the source): it is destroyed and reported failed, and the pool's next converge forks it
 * again here, from this host's own replica.
 */
async function settleOrDrop(ctx: StepContext, lazy: LazyChild, forked: string[], failed: ChildFailure[]): Promise<Record<string, unknown>> {
  try {
    return { ...(await lazy.settled) };
  } catch (err) {
    const name = lazy.child.name;
    ctx.deps.log.error({ err, child: name }, 'lazy child lost its source before it stood alone: destroyed');
    await destroyVm(ctx.deps, name).catch((e: unknown) => ctx.deps.log.warn({ err: e, child: name }, 'could not destroy the lazy child'));
    forked.splice(forked.indexOf(name), 1);
    const message = `lazy child lost its source (${lazy.fromHost}) before it stood alone, destroyed: ${(err as Error).message.split('\n')[0] ?? ''}`;
    failed.push({ name, code: 'VMFORK_FORK_FAILED', message });
    return { error: message };
  }
}

/** The lazy first child, or why there is none (then it is forked with the others, after the copy). */
async function lazyFirst(ctx: StepContext, o: { pool: string; name: string; lazyFrom: { host: string; replica: string }; signal: AbortSignal; customize?: ChildCustomizer }): Promise<{ child?: LazyChild; skipped?: string }> {
  try {
    return { child: await lazyChildHere(ctx, { pool: o.pool, name: o.name, sourceHost: o.lazyFrom.host, replica: o.lazyFrom.replica, signal: o.signal, ...(o.customize ? { customize: o.customize } : {}) }) };
  } catch (err) {
    if (o.signal.aborted) throw err;
    ctx.deps.log.warn({ err, child: o.name }, 'lazy child not made: it is forked after the replica copy');
    return { skipped: (err as Error).message.split('\n')[0] ?? 'failed' };
  }
}
