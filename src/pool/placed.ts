import { VmforkError } from '../errors.js';
import { JobQueue, runOnHost, type HostJob } from '../jobs/index.js';
import { findReplica, getReplica, getVm, listHostRows, markVmReplaced, poolVms, requirePool, updatePool, vmNames, type Db, type ReplicaRow, type VmRow } from '../store/index.js';
import type { TaskContext } from '../task/index.js';
import { destroyVm, hereHost, type VmDeps } from '../vm/index.js';
import { planPlacement, hostRooms, placementHosts } from './placement.js';
import { poolChildNames, type PoolSpec } from './spec.js';
import type { ChildFailure, PlacedResult } from './converge-result.js';

/** What one host's agent answers for its part of a placed pool (src/host-agent/pool-steps.ts). */
export interface HostConverged {
  host: string;
  replica: string;
  template: string;
  forked: string[];
  readyMs: Record<string, number>;
  failed: ChildFailure[];
  /** From the start of this host's part to its first ready child (ms); null when none was forked. */
  firstReadyMs?: number | null;
  /** The lazy first child (issue 14 item 8), or why there was none. */
  lazy?: { name?: string; fromHost?: string; firstReadyMs?: number; settled?: Record<string, unknown>; skipped?: string };
}


/** The fleet's queue for one pool operation (the server's store is the fleet's PostgreSQL). */
function withFleetQueue<T>(deps: VmDeps, fn: (queue: JobQueue) => Promise<T>): Promise<T> {
  return JobQueue.using(deps.home.db, deps.log, fn);
}

/** Destroys a VM wherever it is: here, or by its host's agent. */
export async function destroyAnywhere(deps: VmDeps, name: string, queue?: JobQueue): Promise<unknown> {
  const vm = await getVm(deps.db, name);
  if (!vm) return undefined;
  if (vm.host_id === hereHost(deps)) return destroyVm(deps, name);
  const job: HostJob = { op: 'vm-destroy', name };
  return queue ? runOnHost(queue, deps.db, vm.host_id, job) : withFleetQueue(deps, (q) => runOnHost(q, deps.db, vm.host_id, job));
}

/**
 * One job on a VM's own host, by its agent (a VM of another host of the fleet): power, or a placed pool's child
 * refreshed after its claim's release (`pool-child-refresh`: that agent forks it again from its own template).
 */
export async function onItsHost(deps: VmDeps, vm: VmRow, job: HostJob, signal?: AbortSignal): Promise<unknown> {
  return withFleetQueue(deps, (q) => runOnHost(q, deps.db, vm.host_id, job, signal ? { signal } : {}));
}

/** The pool's replica on `host` (same image version, phase-1 digest and datastore as `source`), ready. */
async function replicaOn(db: Db, source: ReplicaRow, host: string): Promise<ReplicaRow | undefined> {
  const row = await findReplica(db, { image_version: source.image_version, phase1_digest: source.phase1_digest, host_id: host, datastore: source.datastore });
  return row?.state === 'ready' ? row : undefined;
}

/**
 * A placed pool's children sorted for a converge. Live ones (not on a lost host, not replaced) are kept up to `max`
 * in naming order; the rest of them are extra. Those on a lost host (unknown, not yet replaced) are lost. The names
 * of the children to make are the first of the pool's names that no VM of the fleet has (a replaced child keeps
 * its name until its host destroys it, so its replacement takes a new one).
 */
async function sortChildren(db: Db, spec: PoolSpec): Promise<{ lost: VmRow[]; extra: VmRow[]; missing: string[] }> {
  const all = await poolVms(db, spec.name);
  const lostHosts = new Set((await listHostRows(db)).filter((h) => h.state === 'lost').map((h) => h.id));
  const fenced = all.filter((v) => v.replaced_by !== null);
  const lost = all.filter((v) => v.replaced_by === null && v.state === 'unknown' && lostHosts.has(v.host_id));
  const live = all.filter((v) => v.replaced_by === null && !lost.includes(v));
  const want = spec.size.max + fenced.length + lost.length;
  // a names list may hold fewer: then only its names, and a lost child with none left for it stays unreplaced
  const names = 'names' in spec.naming ? spec.naming.names.slice(0, want) : poolChildNames(spec, want);
  const rank = (n: string): number => (names.includes(n) ? names.indexOf(n) : Number.MAX_SAFE_INTEGER);
  const ordered = [...live].sort((a, b) => rank(a.name) - rank(b.name));
  const kept = ordered.slice(0, spec.size.max);
  const taken = await vmNames(db);
  const missing = names.filter((n) => !taken.has(n)).slice(0, Math.max(0, spec.size.max - kept.length));
  return { lost, extra: ordered.slice(spec.size.max), missing };
}

/**
 * Converges a pool placed over hosts (docs/placement.md), each host's work done by its agent:
 * 1. children past `max` destroyed where they are;
 * 2. the missing children placed (placement.ts), counted against each host's room;
 * 3. the replica: phase 1 once, by the first host that takes children (or the pool's replica, kept), then one copy
 *    per other host, pulled at once by their agents (their `--max-copies` bound each host);
 * 4. each host's template and children, by its agent, all hosts at once.
 * Every step finds its own finished work when run again (a replica by its key, a template by its name, a child by
 * its name), so a converge whose server died is run again from the start.
 */
export async function convergePlaced(deps: VmDeps, spec: PoolSpec, ctx: TaskContext): Promise<PlacedResult> {
  return withFleetQueue(deps, async (queue) => {
    const t0 = performance.now();
    const { lost, extra, missing } = await sortChildren(deps.db, spec);
    const removed: string[] = [];
    for (const vm of extra) {
      await destroyAnywhere(deps, vm.name, queue);
      removed.push(vm.name);
      await ctx.child(vm.name, { state: 'removed', percent: 100 });
    }
    // each child of a lost host is replaced under a new name and address (it may still run there, cut off): the
    // mark fences it, and its host's agent destroys it when the host is back (src/vm/unknown.ts)
    for (const [i, vm] of lost.entries()) {
      const by = missing[i];
      if (!by) break;
      await markVmReplaced(deps.db, vm.name, by);
      await ctx.event('host-lost', `${vm.name} on lost host ${vm.host_id} is replaced by ${by}; its agent destroys it when the host is back`, { vm: vm.name, host: vm.host_id, replacedBy: by });
    }
    const pool = await requirePool(deps.db, spec.name);
    let source = pool.replica_id ? await getReplica(deps.db, pool.replica_id) : undefined;
    if (source?.state !== 'ready') source = undefined;
    const hosts = await placementHosts(deps.db, spec);
    const withReplica = new Set<string>();
    if (source) for (const h of hosts) if (await replicaOn(deps.db, source, h.id)) withReplica.add(h.id);
    const rooms = await hostRooms(deps.db, spec, hosts, (h) => !withReplica.has(h));
    const plan = planPlacement(missing, rooms, spec.placement?.strategy ?? 'spread');
    const byHost = new Map<string, string[]>();
    for (const [name, host] of plan) byHost.set(host, [...(byHost.get(host) ?? []), name]);
    for (const name of missing) await ctx.child(name, { state: 'queued', percent: 0 });
    await ctx.event('placement', `placed ${missing.length} child(ren): ${[...byHost].map(([h, n]) => `${h} ${n.length}`).join(', ') || 'none needed'}`, { placement: Object.fromEntries(byHost) });

    await ctx.step('replica', 5);
    let reused = true;
    let phase1Reboots: number | null = null;
    if (!source) {
      const first = [...byHost.keys()][0] ?? hosts[0]?.id;
      if (!first) throw new VmforkError('VMFORK_HOST_NOT_FOUND', 'no host to make the replica on');
      await ctx.event('replica', `phase 1 and the replica on host ${first}`);
      const made = (await runOnHost(queue, deps.db, first, { op: 'replica-make', spec: spec as unknown as Record<string, unknown> }, { signal: ctx.signal })) as { replica: string; reused: boolean };
      source = await getReplica(deps.db, made.replica);
      if (!source) throw new VmforkError('VMFORK_REPLICA_STATE', `replica ${made.replica} made on ${first} is not in the store`);
      reused = made.reused;
      withReplica.add(first);
      phase1Reboots = source.phase1_json ? ((JSON.parse(source.phase1_json) as { reboots?: number }).reboots ?? null) : null;
    }
    await updatePool(deps.db, spec.name, { replica_id: source.id });
    const copies: Record<string, number> = {};
    const src = source;
    // lazy: a host without the replica gets its first child from the source's template at once, and the copy after
    const lazyHosts = new Set(spec.placement?.lazyReplica ? [...byHost.keys()].filter((h) => !withReplica.has(h)) : []);
    await Promise.all(
      [...byHost.keys()].filter((h) => !withReplica.has(h) && !lazyHosts.has(h)).map(async (h) => {
        await ctx.event('replica', `copying replica ${src.id} from ${src.host_id} to ${h}`);
        const r = (await runOnHost(queue, deps.db, h, { op: 'replica-receive', replica: src.id, datastore: spec.datastore }, { signal: ctx.signal })) as { seconds?: number };
        copies[h] = r.seconds ?? 0;
      }),
    );
    const tCopies = performance.now();

    await ctx.step('children', 40);
    const answers = await Promise.all(
      [...byHost].map(async ([h, hostNames]) => {
        for (const n of hostNames) await ctx.child(n, { state: 'forking', percent: 10 });
        try {
          const lazyFrom = lazyHosts.has(h) ? { host: src.host_id, replica: src.id } : undefined;
          if (lazyFrom) await ctx.event('replica', `host ${h}: first child ${hostNames[0] ?? ''} lazily from ${src.host_id}, then the copy of replica ${src.id}`, { host: h, lazyFrom: src.host_id });
          return (await runOnHost(queue, deps.db, h, { op: 'pool-host-converge', pool: spec.name, names: hostNames, ...(lazyFrom ? { lazyFrom } : {}) }, { signal: ctx.signal })) as unknown as HostConverged;
        } catch (err) {
          const e = err as VmforkError;
          return { host: h, replica: '', template: '', forked: [], readyMs: {}, failed: hostNames.map((name) => ({ name, code: e.code ?? 'VMFORK_FORK_FAILED', message: e.message.split('\n')[0] ?? '' })) };
        }
      }),
    );
    const out: PlacedResult = {
      replica: src.id,
      replicaReused: reused,
      phase1Reboots,
      template: answers[0]?.template ?? pool.template_name ?? '',
      forked: [],
      readyMs: {},
      registered: [],
      removed,
      failed: [],
      // each host's template is made inside its part of the children step: `template` is not measured apart
      ms: { replica: Math.round(tCopies - t0), template: 0, children: Math.round(performance.now() - tCopies) },
      hosts: {},
      copies,
      firstReady: {},
    };
    for (const a of answers) {
      const copyMs = Math.round((copies[a.host] ?? 0) * 1000);
      const first = a.firstReadyMs === undefined || a.firstReadyMs === null ? null : a.firstReadyMs + copyMs;
      if (a.forked.length) out.firstReady[a.host] = { ms: first, lazy: Boolean(a.lazy?.name), ...(a.lazy?.fromHost ? { fromHost: a.lazy.fromHost } : {}), ...(a.lazy?.skipped ? { skipped: a.lazy.skipped } : {}), ...(a.lazy?.settled ? { settled: a.lazy.settled } : {}) };
      out.forked.push(...a.forked);
      Object.assign(out.readyMs, a.readyMs);
      out.failed.push(...a.failed);
      for (const n of a.forked) await ctx.child(n, { state: 'running', percent: 100 });
      for (const f of a.failed) await ctx.child(f.name, { state: 'failed', percent: 100, error: f.message });
    }
    if (out.template) await updatePool(deps.db, spec.name, { template_name: out.template });
    for (const vm of await poolVms(deps.db, spec.name)) {
      const here = out.hosts[vm.host_id] ?? { children: 0, replica: (await replicaOn(deps.db, src, vm.host_id))?.id ?? null };
      here.children += 1;
      out.hosts[vm.host_id] = here;
    }
    return out;
  });
}
