import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VmforkError } from '../../src/errors.js';
import { explicitNames } from '../../src/fork/index.js';
import { actorFor, registerLocalHost } from '../../src/host/index.js';
import { allocateLeaseIn, DEFAULT_NETWORK, releaseLease } from '../../src/network/index.js';
import type { PoolForked, PoolForkOptions, PoolParts } from '../../src/pool/parts.js';
import { createProvisionService } from '../../src/pool/index.js';
import { phase1Digest, type ReplicaSpec, type StepReporter } from '../../src/replica/index.js';
import { replicaTemplateName } from '../../src/replica/spec.js';
import type { Actor } from '../../src/state/index.js';
import {
  deleteReplicaRow, deleteTemplateRow, deleteVm, listVms, replicaTemplates, findReplica, getTemplate, getVm, insertImage, insertNetwork, insertReplica, insertTemplate, insertVm, listLeases,
  LOCAL_HOST_ID, openStore, poolVms, requireReplica, requireVm, transition, vmNames, withWriteLock, type ReplicaRow, type VmRow,
} from '../../src/store/index.js';
import { TASK_FINAL_STATES } from '../../src/state/index.js';
import { drainTasks, getTaskView, startTask, type TaskView } from '../../src/task/index.js';
import { createLogger, waitUntil } from '../../src/util/index.js';
import type { VmDeps } from '../../src/vm/index.js';
import { testHomeLayout } from '../helpers/store.js';

/** What a scripted phase 1 recorded (the shape of replica/map.ts's Phase1Record). */
const PHASE1 = { reboots: 1, mounts: { home: '/home', tmp: '/tmp', swap: 'swap' }, ms: { total: 1000 }, copyMs: 10 };

/** How long a test waits for one event of the scripted pool layer (nothing here boots: seconds are plenty). */
export const WAIT_MS = 30_000;

/**
 * The QEMU work of the pool layer, scripted (issue 11 item 9): the replica map, the replica's template and the fork
 * engine make and remove their records in the REAL store, under the real state tables (a claim is a real
 * compare-and-set), and the real task engine and queue run them; only what would start QEMU is left out. Every
 * call is recorded; a test holds a call at a gate (`hold('fork desk-2')`) to land a cancel or a second request in
 * the middle of it, and `overlaps` lists every call that began while another was still running.
 */
export class ScriptedParts implements PoolParts {
  /** Every call in the order it began: `replica`, `template`, `fork <vm>`, `register <vm>`, `destroy <vm>`, … */
  readonly calls: string[] = [];
  /** Calls that began while others ran: `[running…, new]`. Two converges of one pool never overlap. */
  readonly overlaps: string[][] = [];
  /** Children whose fork fails (VMFORK_FORK_FAILED), rolled back as the real fork does. */
  readonly failing = new Set<string>();
  private readonly inFlight = new Set<string>();
  private readonly gates = new Map<string, { opened: Promise<void>; open: () => void }>();

  /** Calls named `point` wait at it until `release(point)`. */
  hold(point: string): void {
    let open!: () => void;
    const opened = new Promise<void>((resolve) => (open = resolve));
    this.gates.set(point, { opened, open });
  }

  release(point: string): void {
    this.gates.get(point)?.open();
  }

  /** Opens every gate (a test that failed midway must not leave runners waiting when its store closes). */
  releaseAll(): void {
    for (const g of this.gates.values()) g.open();
  }

  /** Resolves once a call named `point` has begun (and, if held, is waiting at its gate). */
  async reached(point: string): Promise<void> {
    await waitUntil(() => this.calls.includes(point), { deadlineMs: WAIT_MS, everyMs: 5, what: `the scripted pool layer to reach "${point}"` });
  }

  /** Records the call, waits at its gate if held (a cancel lands there when `signal` is given), then runs `fn`. */
  private async call<T>(point: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    this.calls.push(point);
    if (this.inFlight.size) this.overlaps.push([...this.inFlight, point]);
    this.inFlight.add(point);
    try {
      const gate = this.gates.get(point);
      if (gate) {
        const aborted = new Promise<void>((resolve) => signal?.addEventListener('abort', () => resolve(), { once: true }));
        await Promise.race([gate.opened, aborted]);
        signal?.throwIfAborted();
      }
      return await fn();
    } finally {
      this.inFlight.delete(point);
    }
  }

  /** A replica the map has is reused; a new one is `creating` while held at `replica`, rolled back if that fails or is cancelled. */
  async ensureReplica(deps: VmDeps, spec: ReplicaSpec, report: StepReporter): Promise<{ replica: ReplicaRow; reused: boolean }> {
    const version = `scripted:${spec.image}`;
    const key = { image_version: version, phase1_digest: phase1Digest(spec, version), host_id: LOCAL_HOST_ID, datastore: spec.datastore };
    const found = await findReplica(deps.db, key);
    if (found?.state === 'ready') return this.call('replica reused', () => Promise.resolve({ replica: found, reused: true }));
    const id = createHash('sha256').update(JSON.stringify(key)).digest('hex').slice(0, 12);
    const actor = await actorFor('replica-create');
    const now = new Date().toISOString();
    await insertReplica(deps.db, { id, image_name: spec.image, ...key, state: 'creating', dir: join(deps.home.root, 'replicas', id), disks_json: '[]', phase1_json: JSON.stringify(PHASE1), last_error: null, created_at: now, updated_at: now }, actor);
    try {
      await this.call('replica', () => transition(deps.db, 'replicas', id, 'creating', 'ready', actor), report.signal);
    } catch (err) {
      await deleteReplicaRow(deps.db, id);
      throw err;
    }
    await report.event('replica', `scripted replica ${id} ready`);
    return { replica: await requireReplica(deps.db, id), reused: false };
  }

  ensureReplicaTemplate(deps: VmDeps, replica: ReplicaRow, spec: ReplicaSpec, report: StepReporter): Promise<{ row: { name: string } }> {
    const name = replicaTemplateName(replica.id, spec);
    return this.call(
      'template',
      async () => {
        const row = await getTemplate(deps.db, name);
        if (row?.state === 'ready') return { row };
        const now = new Date().toISOString();
        await insertTemplate(deps.db, { name, image_name: spec.image, state: 'ready', dir: join(deps.home.root, 'templates', name), spec_json: '{}', record_json: null, replica_id: replica.id, last_error: null, created_at: now, updated_at: now }, await actorFor('template-create'));
        return { row: { name } };
      },
      report.signal,
    );
  }

  /**
   * As the real batch: every name and lease reserved in one write transaction first (a name taken is
   * VMFORK_VM_EXISTS), then the children one by one — a child not started when the batch is cancelled (or after a
   * failure under stopOnError) is released and reported skipped; a child already forking finishes.
   */
  async forkChildren(deps: VmDeps, options: PoolForkOptions): Promise<{ registered: string[]; skipped: string[] }> {
    const actor = await actorFor('fork');
    const network = options.network ?? DEFAULT_NETWORK.name;
    const names = await withWriteLock(deps.db, async (conn) => {
      const picked = explicitNames(options.names ?? [], await vmNames(conn));
      for (const name of picked) {
        await allocateLeaseIn(conn, { network, vmName: name });
        const now = new Date().toISOString();
        await insertVm(conn, { name, host_id: LOCAL_HOST_ID, image_name: null, template_name: options.template, pool_name: options.pool ?? null, state: 'creating', role: 'child', dir: join(deps.home.vms, name), spec_json: '{}', last_error: null, created_at: now, updated_at: now }, actor);
      }
      return picked;
    });
    const out = { registered: [] as string[], skipped: [] as string[] };
    let stop = false;
    for (const name of names) {
      if (stop || options.signal?.aborted) {
        await this.remove(deps, name, actor);
        out.skipped.push(name);
        continue;
      }
      options.onStart?.(name);
      if (options.registerOnly) {
        await this.call(`register ${name}`, () => transition(deps.db, 'vms', name, 'creating', 'registered', actor));
        out.registered.push(name);
        continue;
      }
      try {
        options.onChild?.(await this.fork(deps, name, 'creating', actor));
      } catch (err) {
        options.onChild?.({ name, error: err as VmforkError });
        if (options.stopOnError) stop = true;
      }
    }
    return out;
  }

  /** As the real one: the claim (`registered` → `forking`) is a compare-and-set, so the loser of a race touches nothing. */
  async forkRegistered(deps: VmDeps, name: string): Promise<PoolForked> {
    const row = await requireVm(deps.db, name);
    if (row.state !== 'registered' && row.state !== 'warm') throw new VmforkError('VMFORK_VM_STATE', `VM ${name} is ${row.state}; only a registered child is forked on power-on`, { details: { vm: name, state: row.state } });
    const actor = await actorFor('fork');
    await transition(deps.db, 'vms', name, row.state, 'forking', actor);
    if (row.state === 'warm') this.calls.push(`resume warm ${name}`);
    return this.fork(deps, name, 'forking', actor);
  }

  private fork(deps: VmDeps, name: string, from: 'creating' | 'forking', actor: Actor): Promise<PoolForked> {
    return this.call(`fork ${name}`, async () => {
      if (this.failing.has(name)) {
        await this.remove(deps, name, actor);
        throw new VmforkError('VMFORK_FORK_FAILED', `child ${name}: scripted failure`, { details: { vm: name } });
      }
      if (from === 'creating') await transition(deps.db, 'vms', name, 'creating', 'forking', actor);
      await transition(deps.db, 'vms', name, 'forking', 'running', actor);
      return { name, timings: { qmpMs: 1, loadedMs: 2, runningMs: 3, agentMs: 4, readyMs: 5 } };
    });
  }

  destroyVm(deps: VmDeps, name: string): Promise<unknown> {
    return this.call(`destroy ${name}`, async () => this.remove(deps, name, await actorFor('destroy')));
  }

  bootStopped(deps: VmDeps, vm: VmRow): Promise<void> {
    return this.call(`boot ${vm.name}`, async () => {
      const actor = await actorFor('start');
      await transition(deps.db, 'vms', vm.name, vm.state, 'starting', actor);
      await transition(deps.db, 'vms', vm.name, 'starting', 'running', actor);
    });
  }

  stopVm(deps: VmDeps, name: string): Promise<VmRow> {
    return this.call(`stop ${name}`, async () => {
      const actor = await actorFor('stop');
      await transition(deps.db, 'vms', name, (await requireVm(deps.db, name)).state, 'stopping', actor);
      await transition(deps.db, 'vms', name, 'stopping', 'stopped', actor);
      return requireVm(deps.db, name);
    });
  }

  /** As the real one: `→ refreshing` is a compare-and-set, then `registered` (new overlays), then forked again. */
  refreshChild(deps: VmDeps, name: string, template: string): Promise<PoolForked> {
    return this.call(`refresh ${name}`, async () => {
      const actor = await actorFor('fork');
      await transition(deps.db, 'vms', name, (await requireVm(deps.db, name)).state, 'refreshing', actor);
      if (this.failing.has(name)) {
        await this.remove(deps, name, actor);
        throw new VmforkError('VMFORK_FORK_FAILED', `child ${name}: scripted failure`, { details: { vm: name } });
      }
      await transition(deps.db, 'vms', name, 'refreshing', 'registered', actor, { template_name: template, facts_json: null });
      await transition(deps.db, 'vms', name, 'registered', 'forking', actor);
      await transition(deps.db, 'vms', name, 'forking', 'running', actor);
      return { name, timings: { qmpMs: 1, loadedMs: 2, runningMs: 3, agentMs: 4, readyMs: 5 } };
    });
  }

  resetDisks(_deps: VmDeps, name: string, _template: string, ids: readonly string[]): Promise<string[]> {
    return this.call(`reset ${name} ${ids.join(',')}`, () => Promise.resolve([...ids]));
  }

  /** Children whose suspend state is damaged: their resume fails and they boot. */
  readonly damaged = new Set<string>();

  suspendVm(deps: VmDeps, name: string): Promise<unknown> {
    return this.call(`suspend ${name}`, async () => transition(deps.db, 'vms', name, 'running', 'stopped', await actorFor('stop')));
  }

  resumeVm(deps: VmDeps, name: string): Promise<{ resumed: true } | { resumed: false; reason: string }> {
    return this.call(`resume ${name}`, async () => {
      if (this.damaged.has(name)) return { resumed: false as const, reason: 'its suspend state did not load: scripted damage' };
      const actor = await actorFor('start');
      await transition(deps.db, 'vms', name, 'stopped', 'starting', actor);
      await transition(deps.db, 'vms', name, 'starting', 'running', actor);
      return { resumed: true as const };
    });
  }

  warmRegistered(deps: VmDeps, name: string): Promise<void> {
    return this.call(`warm ${name}`, async () => transition(deps.db, 'vms', name, 'registered', 'warm', await actorFor('warm')));
  }

  notifyGuest(_deps: VmDeps, name: string): Promise<void> {
    return this.call(`notify ${name}`, () => Promise.resolve());
  }

  /** As the real one: refused while a child stands on one of its templates; else its templates and record go. */
  removeReplica(deps: VmDeps, id: string): Promise<unknown> {
    return this.call(`remove replica ${id}`, async () => {
      const templates = (await replicaTemplates(deps.db, id)).map((t) => t.name);
      const users = (await listVms(deps.db)).filter((v) => v.template_name !== null && templates.includes(v.template_name));
      if (users.length) throw new VmforkError('VMFORK_REPLICA_IN_USE', `replica ${id}: children stand on it`);
      for (const t of templates) await deleteTemplateRow(deps.db, t);
      await deleteReplicaRow(deps.db, id);
    });
  }

  /** Session watches the claim clock opened, by VM: a test drives them (`sessions.get(vm)?.(['ada'])`). */
  readonly sessions = new Map<string, (users: string[]) => void>();

  /** A scripted vmfork-guest WATCH: the test sends the session lists. */
  watchSessions = (_deps: VmDeps, vm: VmRow, onSessions: (users: string[]) => void): Promise<{ close(): void }> => {
    this.calls.push(`watch ${vm.name}`);
    this.sessions.set(vm.name, onSessions);
    return Promise.resolve({ close: () => void this.sessions.delete(vm.name) });
  };

  /** A VM's record and lease gone, through `destroying` as the state table wants. */
  private async remove(deps: VmDeps, name: string, actor: Actor): Promise<void> {
    const vm = await getVm(deps.db, name);
    if (!vm) return;
    if (vm.state !== 'destroying') await transition(deps.db, 'vms', name, vm.state, 'destroying', actor);
    for (const l of (await listLeases(deps.db)).filter((x) => x.vm_name === name)) await releaseLease(deps.db, l.network_name, name);
    await deleteVm(deps.db, name);
  }
}

/** A fresh data dir with a real store, an image, the default network's record (no namespace) and the real service over scripted parts. */
export interface PoolFixture {
  deps: VmDeps;
  parts: ScriptedParts;
  service: ReturnType<typeof createProvisionService>;
  /** Resolves with the task once it has ended; fails the test after WAIT_MS. */
  ended(taskId: string): Promise<TaskView>;
  /**
   * Resolves once a task started now, in a queue of its own, has run 50 steps to its end: every task started before
   * it that was free to run has had as many turns. A task found still queued afterwards was held by its queue, not
   * merely slower (the event this waits for is that task's end, never a clock).
   */
  othersHadTheirTurn(): Promise<void>;
}

/** How a fixture differs from the default: other scripted parts, a real log file in the data dir's logs/. */
export interface PoolFixtureOptions {
  parts?: ScriptedParts;
  logToFile?: boolean;
}

export function withPool(fn: (f: PoolFixture) => Promise<void>, options: PoolFixtureOptions = {}): () => Promise<void> {
  return async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vmfork-pool-'));
    const home = await testHomeLayout(dir);
    const db = await openStore(home.db);
    const deps: VmDeps = { db, home, log: createLogger(options.logToFile ? home.logs : undefined) };
    const parts = options.parts ?? new ScriptedParts();
    try {
      await registerLocalHost(deps);
      const now = new Date().toISOString();
      await insertImage(db, { name: 'default', source: 'imported', state: 'ready', disk_path: join(home.images, 'default', 'disk.qcow2'), kernel_path: null, initrd_path: null, manifest_path: null, recipe_hash: null, virtual_size: 1 << 30, file_size: 1 << 20, created_at: now }, await actorFor('image-import'));
      await insertNetwork(db, { name: DEFAULT_NETWORK.name, cidr: DEFAULT_NETWORK.cidr, netns: 'vmfork-scripted', bridge: 'br-scripted', gateway: '10.231.0.1', owner_id: 'scripted', state: 'ready', created_at: now, updated_at: now }, await actorFor('network-create'));
      const ended = async (taskId: string): Promise<TaskView> =>
        waitUntil(async () => {
          const t = await getTaskView(deps, taskId);
          return TASK_FINAL_STATES.includes(t.state) ? t : undefined;
        }, { deadlineMs: WAIT_MS, everyMs: 10, what: `task ${taskId} to end` });
      const othersHadTheirTurn = async (): Promise<void> => {
        const id = await startTask(deps, { kind: 'witness', target: 'witness', queue: `witness-${Math.random()}` }, async (ctx) => {
          for (let i = 0; i < 50; i++) await ctx.step(`turn ${i}`);
        });
        assert.equal((await ended(id)).state, 'succeeded');
      };
      await fn({ deps, parts, service: createProvisionService(deps, parts), ended, othersHadTheirTurn });
      assert.ok(await drainTasks(WAIT_MS), 'every task the test started has ended by its end');
    } finally {
      parts.releaseAll();
      // every runner of this store ends before the store closes (a follow-up converge may still be running)
      await drainTasks(WAIT_MS);
      await db.destroy();
      await rm(dir, { recursive: true, force: true });
    }
  };
}

/** A pool spec for these tests: pool `desk`, children `desk-1`…, the image and datastore the fixture has. */
export function deskSpec(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: 'desk', image: 'default', disks: { disposable: '64M' }, size: { max: 2 }, ...over };
}

/** The pool's children as `name:state`, sorted by name. */
export async function children(deps: VmDeps, pool = 'desk'): Promise<string[]> {
  return (await poolVms(deps.db, pool)).map((v) => `${v.name}:${v.state}`);
}
