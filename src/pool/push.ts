import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { poolCustomizer } from '../customize/index.js';
import { VmforkError } from '../errors.js';
import { actorFor } from '../host/index.js';
import { childShape } from '../replica/index.js';
import { PUSH_STATES, pushStateMachine, type PushState } from '../state/index.js';
import { getPool, listPoolRows, moveClaim, poolVms, requirePool, transition, updatePool, type PoolRow, type VmRow } from '../store/index.js';
import type { TaskContext } from '../task/index.js';
import { waitUntil } from '../util/index.js';
import type { VmDeps } from '../vm/index.js';
import { convergePool, poolSpecOf } from './converge.js';
import type { PoolParts } from './parts.js';
import type { PoolSpec } from './spec.js';

/** How claimed children on the old template move: at their release, or after a notice and a grace (`--force`). */
export const PUSH_MODES = ['at-release', 'force'] as const;
export type PushMode = (typeof PUSH_MODES)[number];

export const PushViewSchema = z.object({
  state: z.enum(PUSH_STATES),
  taskId: z.string(),
  mode: z.enum(PUSH_MODES),
  minReady: z.number().int(),
  /** Whether the push made a new replica (phase 1 of the new spec); a phase-2-only push does not. */
  newReplica: z.boolean(),
  from: z.object({ replica: z.string().nullable(), template: z.string().nullable() }),
  to: z.object({ replica: z.string().nullable(), template: z.string().nullable() }),
  replaced: z.array(z.string()),
  /** Children still on the old template: claimed ones (they move at their release), or a persistent pool's (they keep their machine). */
  pending: z.array(z.string()),
  /** The fewest children seen ready while it replaced (never below minReady). */
  lowestReady: z.number().int().nullable(),
  error: z.string().nullable(),
  startedAt: z.string(),
  endedAt: z.string().nullable(),
});
export type PushView = z.infer<typeof PushViewSchema>;

/** What a push may not change: its children's device layout and shape (a fork loads the template's device state). */
export function pushProblems(old: PoolSpec, next: PoolSpec): { path: string; message: string }[] {
  const out: { path: string; message: string }[] = [];
  const differ = (path: string, a: unknown, b: unknown): void => {
    if (JSON.stringify(a) !== JSON.stringify(b)) out.push({ path, message: `is ${JSON.stringify(a)} in the pool, ${JSON.stringify(b)} pushed: a running child cannot change it` });
  };
  differ('name', old.name, next.name);
  differ('memory', childShape(old).memoryMiB, childShape(next).memoryMiB);
  differ('cpus', childShape(old).cpus, childShape(next).cpus);
  // a screen's VGA device is part of the machine a child loads
  differ('screen', old.screen === true, next.screen === true);
  differ('persistent', old.persistent, next.persistent);
  differ('disks.userData', old.disks.userData !== undefined, next.disks.userData !== undefined);
  differ('network', old.network, next.network);
  return out;
}

export function pushOf(row: PoolRow): PushView | null {
  return row.push_json ? (JSON.parse(row.push_json) as PushView) : null;
}

async function save(deps: VmDeps, pool: string, rec: PushView, to?: PushState): Promise<void> {
  if (to) {
    pushStateMachine.assertTransition(rec.state, to, pool);
    rec.state = to;
    if (to === 'done' || to === 'failed') rec.endedAt = new Date().toISOString();
  }
  await updatePool(deps.db, pool, { push_json: JSON.stringify(rec) });
}

const ready = (vms: VmRow[]): number => vms.filter((v) => v.state === 'running').length;

/**
 * Runs a push (task `pool-update`, in the pool's queue): the new replica and template while the old serve; then
 * the pool forks from the new template and its children on the old one are refreshed one at a time — registered
 * ones re-registered, spares first, claimed ones at their release or (`force`) after a notice and `graceSeconds` —
 * never leaving fewer than `minReady` ready. At its first error it stops, and the pool serves on the old replica
 * and template again. A spec that changes only phase-2 fields makes no replica and replaces nothing.
 */
export async function runPush(deps: VmDeps, ctx: TaskContext, parts: PoolParts): Promise<Record<string, unknown>> {
  const name = ctx.target;
  const row = await requirePool(deps.db, name);
  const old = poolSpecOf(row);
  const next = poolSpecOf({ ...row, spec_json: JSON.stringify(ctx.input.spec) });
  // checked again at its turn: a resize queued before it changed the pool since it was accepted
  assertPushable(old, next);
  const mode = (ctx.input.mode as PushMode | undefined) ?? 'at-release';
  const minReady = Number(ctx.input.minReady ?? 0);
  const actor = await actorFor('pool');
  const from = { replica: row.replica_id, template: row.template_name };
  const rec: PushView = {
    state: 'building', taskId: ctx.id, mode, minReady, newReplica: false, from, to: { replica: null, template: null },
    replaced: [], pending: [], lowestReady: null, error: null, startedAt: new Date().toISOString(), endedAt: null,
  };
  if (row.state !== 'provisioning') await transition(deps.db, 'pools', name, row.state, 'provisioning', actor, { task_id: ctx.id, last_error: null });
  await save(deps, name, rec);
  try {
    const report = { step: (n: string, p?: number) => ctx.step(n, p), event: (k: string, m: string, d?: Record<string, unknown>) => ctx.event(k, m, d), signal: ctx.signal };
    await ctx.step('replica', 5);
    const { replica } = await parts.ensureReplica(deps, next, report);
    await ctx.step('template', 40);
    const template = (await parts.ensureReplicaTemplate(deps, replica, next, report)).row.name;
    rec.to = { replica: replica.id, template };
    rec.newReplica = template !== from.template;
    // from here new forks use the new template; the old one serves the children still on it
    await updatePool(deps.db, name, { spec_json: JSON.stringify(next), replica_id: replica.id, template_name: template });
    await save(deps, name, rec, 'replacing');
    if (rec.newReplica && !next.persistent) await replaceChildren(deps, ctx, parts, next, template, rec);
    // a persistent child's /home is its user's, and a fork from another template cannot resume over it: it keeps
    // its machine, and only children made from now on stand on the new template
    if (rec.newReplica && next.persistent) rec.pending = (await poolVms(deps.db, name)).filter((v) => v.template_name !== template).map((v) => v.name);
    await save(deps, name, rec, rec.pending.length ? 'waiting' : 'done');
  } catch (err) {
    rec.error = (err as Error).message.split('\n')[0] ?? String(err);
    await updatePool(deps.db, name, { spec_json: row.spec_json, replica_id: from.replica, template_name: from.template });
    await save(deps, name, rec, 'failed');
    if ((await getPool(deps.db, name))?.state === 'provisioning') await transition(deps.db, 'pools', name, 'provisioning', 'failed', actor, { last_error: `push: ${rec.error}` });
    throw err;
  }
  // names re-registration dropped come back on the new template, spares are topped up, a new size applies
  const converged = await convergePool(deps, name, ctx, parts);
  const retired = await retireReplica(deps, from.replica, parts);
  return { push: rec, converged: { forked: converged.forked, registered: converged.registered, removed: converged.removed }, retiredReplica: retired };
}

async function replaceChildren(deps: VmDeps, ctx: TaskContext, parts: PoolParts, spec: PoolSpec, template: string, rec: PushView): Promise<void> {
  const customize = poolCustomizer(spec);
  const opts = { ...(customize ? { customize } : {}), signal: ctx.signal };
  const stale = async (): Promise<VmRow[]> => (await poolVms(deps.db, spec.name)).filter((v) => v.template_name !== template);
  // registered children never ran: they go, and the converge after the push registers their names again
  for (const vm of (await stale()).filter((v) => v.state === 'registered' && v.claim_state === 'unclaimed')) {
    await parts.destroyVm(deps, vm.name);
    await ctx.child(vm.name, { state: 'removed', percent: 100 });
  }
  const refresh = async (vm: VmRow, from: 'unclaimed' | 'claimed'): Promise<void> => {
    // one at a time, never below min-ready: the one refreshed is not ready until its fork is done
    await waitUntil(async () => ready(await poolVms(deps.db, spec.name)) - 1 >= rec.minReady || undefined, {
      deadlineMs: 15 * 60_000, everyMs: 250, signal: ctx.signal, what: `pool ${spec.name} to have more than ${rec.minReady} ready children`,
    });
    if (!(await moveClaim(deps.db, vm.name, from, 'releasing', {}, 'running'))) return;
    rec.lowestReady = Math.min(rec.lowestReady ?? Infinity, ready(await poolVms(deps.db, spec.name)) - 1);
    await ctx.child(vm.name, { state: 'forking', percent: 10 });
    try {
      await parts.refreshChild(deps, vm.name, template, opts);
    } finally {
      await moveClaim(deps.db, vm.name, 'releasing', 'unclaimed').catch(() => false);
    }
    rec.replaced.push(vm.name);
    await ctx.child(vm.name, { state: 'running', percent: 100 });
    await save(deps, spec.name, rec);
  };
  for (const vm of (await stale()).filter((v) => v.state === 'running' && v.claim_state === 'unclaimed')) await refresh(vm, 'unclaimed');
  const claimed = (await stale()).filter((v) => v.claim_state === 'claimed');
  if (rec.mode === 'force' && claimed.length) {
    const grace = Number(ctx.input.graceSeconds ?? 60);
    for (const vm of claimed) await parts.notifyGuest(deps, vm.name, `vmfork: this desktop is replaced by a new image in ${grace} s; save your work`).catch(() => undefined);
    await ctx.event('push', `${claimed.length} claimed child(ren) notified; replaced in ${grace} s`, { claimed: claimed.map((v) => v.name), graceSeconds: grace });
    // the deliberate delay: the notice's grace period (a cancel ends it)
    await sleep(grace * 1000, undefined, { signal: ctx.signal });
    for (const vm of claimed) await refresh(vm, 'claimed');
  }
  rec.pending = (await stale()).filter((v) => v.claim_state !== 'unclaimed').map((v) => v.name);
}

/** Removes a replica (and its templates) once no pool uses it and no child stands on its templates; false if kept. */
export async function retireReplica(deps: VmDeps, replica: string | null, parts: PoolParts): Promise<boolean> {
  if (!replica) return false;
  if ((await listPoolRows(deps.db)).some((p) => p.replica_id === replica)) return false;
  return parts.removeReplica(deps, replica).then(
    () => true,
    () => false,
  );
}

/** After a release: a push waiting for claimed children ends when the last one moved, and retires the old replica. */
export async function advancePush(deps: VmDeps, pool: string, parts: PoolParts): Promise<void> {
  const row = await getPool(deps.db, pool);
  const rec = row ? pushOf(row) : null;
  if (!row || !rec || rec.state !== 'waiting') return;
  rec.pending = (await poolVms(deps.db, pool)).filter((v) => v.template_name !== rec.to.template).map((v) => v.name);
  if (rec.pending.length) return save(deps, pool, rec);
  await save(deps, pool, rec, 'done');
  await retireReplica(deps, rec.from.replica, parts);
}

export function assertPushable(old: PoolSpec, next: PoolSpec): void {
  const problems = pushProblems(old, next);
  if (problems.length) {
    throw new VmforkError('VMFORK_PUSH_INCOMPATIBLE', `pool ${old.name}: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`, { details: { problems } });
  }
}
