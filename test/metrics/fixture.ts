import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { ensureApiToken } from '../../src/api/index.js';
import { readStartTime, registerLocalHost } from '../../src/host/index.js';
import { ensureMetricsToken, registerMetrics, type SessionCheck } from '../../src/metrics/index.js';
import { parsePoolSpec } from '../../src/pool/index.js';
import type { TaskState, VmState } from '../../src/state/index.js';
import { insertImage, insertPool, insertReplica, insertTask, insertVm, LOCAL_HOST_ID, openStore, recordProcess, registerAgentHost, setVmClaimed } from '../../src/store/index.js';
import { createLogger } from '../../src/util/index.js';
import type { VmDeps } from '../../src/vm/index.js';
import { testActor } from '../helpers/actor.js';
import { testHomeLayout } from '../helpers/store.js';

/**
 * Pool p1 (max 8, min 2, spares 1) with children in several states, as the unit test and the real Prometheus
 * scrape both read it. Claimable now: p1-1 (running spare), p1-3 (registered), p1-4 (warm); p1-2 runs but is claimed.
 */
export const P1_CHILDREN: readonly { name: string; state: VmState; claimed?: boolean }[] = [
  { name: 'p1-1', state: 'running' },
  { name: 'p1-2', state: 'running', claimed: true },
  { name: 'p1-3', state: 'registered' },
  { name: 'p1-4', state: 'warm' },
  { name: 'p1-5', state: 'stopped' },
  { name: 'p1-6', state: 'failed' },
];

/** What each fixture VM holds of its host's memory as placement counts it: its whole 256 MiB + QEMU's 64 MiB. */
export const HELD_MIB_PER_VM = 256 + 64;

export interface MetricsFixture {
  dir: string;
  deps: VmDeps;
  token: string;
  scrapeToken: string;
  scrapeTokenPath: string;
  app: FastifyInstance;
  /** Adds a VM to pool p1 (or none) on a host. */
  addVm(name: string, state: VmState, opts?: { pool?: string | null; host?: string; cpus?: number }): Promise<void>;
  /** Records a task that ended now, queued `seconds` earlier (now: after the metrics' start). */
  addTask(id: string, kind: string, state: TaskState, seconds: number, result?: Record<string, unknown>, endedAt?: Date): Promise<void>;
  /** Records a fork of a VM that made it ready at `at` (now: after the metrics' start) in `readyMs`, as src/fork/child.ts does. */
  markForked(name: string, readyMs: number, at?: Date): Promise<void>;
  close(): Promise<void>;
}

/**
 * A bare Fastify app with only /metrics (and, when asked, a stand-in claim route) over a fresh store: what the
 * metrics room needs of the API is the route's auth config and the claim route's name, nothing else.
 */
export async function metricsFixture(options: { sessionValid?: SessionCheck; claimRoute?: (pool: string) => number } = {}): Promise<MetricsFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'vmfork-metrics-'));
  const home = await testHomeLayout(dir);
  const db = await openStore(home.db);
  const deps: VmDeps = { db, home, log: createLogger(undefined) };
  await registerLocalHost(deps);
  const { token } = await ensureApiToken(home);
  const { token: scrapeToken, path: scrapeTokenPath } = await ensureMetricsToken(home);
  const now = (): string => new Date().toISOString();

  const addVm: MetricsFixture['addVm'] = async (name, state, opts = {}) => {
    const spec = JSON.stringify({ memoryMiB: 256, cpus: opts.cpus ?? 1 });
    const pool = opts.pool === undefined ? 'p1' : opts.pool;
    await insertVm(db, { name, host_id: opts.host ?? LOCAL_HOST_ID, image_name: null, state, role: 'child', dir: join(home.vms, name), spec_json: spec, last_error: null, created_at: now(), updated_at: now(), template_name: null, pool_name: pool }, await testActor('fork'));
  };
  const addTask: MetricsFixture['addTask'] = async (id, kind, state, seconds, result, endedAt = new Date()) => {
    const created = new Date(endedAt.getTime() - seconds * 1000).toISOString();
    await insertTask(db, { id, kind, target: 'p1', state, step: null, percent: 100, progress_json: '{}', input_json: '{}', result_json: result ? JSON.stringify(result) : null, last_error: null, host_id: LOCAL_HOST_ID, queue: 'p1', lock: 'pool', queued_behind: null, created_at: created, updated_at: endedAt.toISOString() }, await testActor('pool'));
  };
  const markForked: MetricsFixture['markForked'] = async (name, readyMs, at = new Date()) => {
    await db.updateTable('vms').set({ forked_at: at.toISOString(), ready_ms: readyMs }).where('name', '=', name).execute();
  };

  await insertImage(db, { name: 'default', source: 'imported', state: 'ready', disk_path: join(home.images, 'default', 'disk.qcow2'), kernel_path: null, initrd_path: null, manifest_path: null, recipe_hash: null, virtual_size: 1 << 30, file_size: 1 << 20, created_at: now() }, await testActor('image-import'));
  const spec = parsePoolSpec({ name: 'p1', image: 'default', provisioning: 'on-demand', size: { max: 8, min: 2, spares: 1 }, naming: { pattern: 'p1-{n}' }, disks: { disposable: '128M' } });
  await insertPool(db, { name: 'p1', host_id: LOCAL_HOST_ID, state: 'ready', spec_json: JSON.stringify(spec), replica_id: null, template_name: null, task_id: null, last_error: null, created_at: now(), updated_at: now() }, await testActor('pool'));
  for (const c of P1_CHILDREN) {
    await addVm(c.name, c.state);
    if (c.claimed) await setVmClaimed(db, c.name, true);
  }
  // p1-1's "QEMU" is this test process: a live (pid, start time) whose /proc the metrics read
  await recordProcess(db, { vm_name: 'p1-1', pid: process.pid, start_time: (await readStartTime(process.pid)) as number, qmp_path: '/nonexistent', agent_path: null, pidfile: '/nonexistent', argv_json: '[]', started_at: now(), exited_at: null });
  // an agent's host: 4 CPUs x ratio 2 = 8 vCPUs, 8 GiB, its datastore with 5 GB free at its last heartbeat
  await registerAgentHost(db, { id: 'h2', hostname: 'h2', protocol: 1, pid: 1, listen: '127.0.0.1:1', cpus: 4, cpuAllocationRatio: 2, memoryBytes: 8 * 2 ** 30, accel: 'kvm', accelWhy: '', qemuVersion: '8.0', lostAfterMs: 60_000, datastores: [{ name: 'default', path: '/srv/vmfork', freeBytes: 5e9 }] });
  await addVm('h2-vm', 'running', { pool: null, host: 'h2', cpus: 2 });
  // a replica made before the metrics started: its history is not replayed
  await insertReplica(db, { id: 'r-old', image_name: 'default', image_version: 'v0', phase1_digest: 'd', host_id: LOCAL_HOST_ID, datastore: 'default', state: 'ready', dir: '/r-old', disks_json: '[]', phase1_json: JSON.stringify({ reboots: 1, ms: { total: 1000 }, copyMs: 1000 }), last_error: null, created_at: '2020-01-01T00:00:00.000Z', updated_at: '2020-01-01T00:00:00.000Z' }, await testActor('replica-create'));
  await addTask('t-old', 'pool-create', 'succeeded', 10, undefined, new Date('2020-01-01T00:00:00.000Z'));
  await markForked('p1-2', 99_000, new Date('2020-01-01T00:00:00.000Z'));

  const app = Fastify();
  registerMetrics(app, { deps, token, scrapeToken, ...(options.sessionValid ? { sessionValid: options.sessionValid } : {}) });
  const claimRoute = options.claimRoute;
  if (claimRoute) {
    app.post('/v1/pools/:name/claim', async (req, reply) => reply.status(claimRoute((req.params as { name: string }).name)).send({}));
  }
  return {
    dir, deps, token, scrapeToken, scrapeTokenPath, app, addVm, addTask, markForked,
    close: async () => {
      await app.close();
      await db.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Samples of a Prometheus text exposition: `name{labels} value` lines, comments skipped. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    const v = m[3] as string;
    out.push({ name: m[1] as string, labels, value: v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v) });
  }
  return out;
}

/** The one sample of `name` whose labels include `labels`; undefined when none, an error when several match. */
export function sample(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.value;
}
