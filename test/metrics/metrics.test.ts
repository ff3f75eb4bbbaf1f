import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { VmforkError } from '../../src/errors.js';
import { ensureMetricsToken } from '../../src/metrics/index.js';
import { insertReplica, LOCAL_HOST_ID } from '../../src/store/index.js';
import { testActor } from '../helpers/actor.js';
import { HELD_MIB_PER_VM, metricsFixture, P1_CHILDREN, parseExposition, sample, type MetricsFixture, type Sample } from './fixture.js';

async function scrape(app: FastifyInstance, token: string): Promise<Sample[]> {
  const r = await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${token}` } });
  assert.equal(r.statusCode, 200, r.body);
  assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return parseExposition(r.body);
}

function withFixture(fn: (f: MetricsFixture) => Promise<void>, options: Parameters<typeof metricsFixture>[0] = {}): () => Promise<void> {
  return async () => {
    const f = await metricsFixture(options);
    try {
      await fn(f);
    } finally {
      await f.close();
    }
  };
}

test('GET /metrics: 401 without credentials, 403 with a wrong token, 200 with the API token or the scrape token', withFixture(async (f) => {
  const none = await f.app.inject({ method: 'GET', url: '/metrics' });
  assert.equal(none.statusCode, 401);
  assert.equal(none.json<{ error: { code: string } }>().error.code, 'VMFORK_AUTH_REQUIRED');
  assert.equal(none.headers['www-authenticate'], 'Bearer');
  const malformed = await f.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Basic abc' } });
  assert.equal(malformed.statusCode, 401);
  const wrong = await f.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer not-the-token' } });
  assert.equal(wrong.statusCode, 403);
  assert.equal(wrong.json<{ error: { code: string } }>().error.code, 'VMFORK_AUTH_INVALID');
  for (const token of [f.token, f.scrapeToken]) {
    const ok = await f.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.statusCode, 200);
  }
  assert.notEqual(f.token, f.scrapeToken, 'the scrape token is a secret of its own');
}));

test('GET /metrics with a console session: the session check decides; the error it throws is the answer', async () => {
  const cookie = (req: { headers: Record<string, unknown> }): string => String(req.headers.cookie ?? '');
  const check = (req: { headers: Record<string, unknown> }): Promise<boolean> => {
    if (cookie(req) === 'vmfork_session=good') return Promise.resolve(true);
    if (cookie(req) === 'vmfork_session=stale') return Promise.reject(new VmforkError('VMFORK_AUTH_INVALID', 'stand-in for an expired session'));
    return Promise.resolve(false);
  };
  await withFixture(async (f) => {
    const get = (c?: string) => f.app.inject({ method: 'GET', url: '/metrics', headers: c ? { cookie: c } : {} });
    assert.equal((await get('vmfork_session=good')).statusCode, 200);
    assert.equal((await get('vmfork_session=stale')).statusCode, 403);
    assert.equal((await get('vmfork_session=unknown')).statusCode, 401);
    assert.equal((await get()).statusCode, 401);
  }, { sessionValid: check })();
});

test('ensureMetricsToken: made once, 0600, the same token at the next start', withFixture(async (f) => {
  const again = await ensureMetricsToken(f.deps.home);
  assert.equal(again.token, f.scrapeToken);
  assert.equal(again.path, f.scrapeTokenPath);
  assert.equal(lstatSync(f.scrapeTokenPath).mode & 0o777, 0o600);
  assert.equal(readFileSync(f.scrapeTokenPath, 'utf8').trim(), f.scrapeToken);
}));

test('the gauges: pools, children per VM state, claimable and spare children, size bounds, VMs and tasks', withFixture(async (f) => {
  await f.addTask('t-1', 'pool-converge', 'succeeded', 3);
  await f.addTask('t-2', 'pool-converge', 'failed', 1);
  const s = await scrape(f.app, f.scrapeToken);
  assert.equal(sample(s, 'vmfork_pools', { state: 'ready' }), 1);
  assert.equal(sample(s, 'vmfork_pools', { state: 'failed' }), 0);
  assert.equal(sample(s, 'vmfork_pool_state', { pool: 'p1', state: 'ready' }), 1);
  assert.equal(sample(s, 'vmfork_pool_state', { pool: 'p1', state: 'provisioning' }), 0);
  for (const state of ['running', 'registered', 'warm', 'stopped', 'failed', 'forking'] as const) {
    assert.equal(sample(s, 'vmfork_pool_children', { pool: 'p1', state }), P1_CHILDREN.filter((c) => c.state === state).length, state);
  }
  assert.equal(sample(s, 'vmfork_pool_children', { pool: 'p1', state: 'running' }), 2);
  // p1-1 (spare), p1-3 (registered: forked for the claim), p1-4 (warm); p1-2 runs but is claimed
  assert.equal(sample(s, 'vmfork_pool_ready_children', { pool: 'p1' }), 3);
  assert.equal(sample(s, 'vmfork_pool_spare_children', { pool: 'p1' }), 1);
  assert.equal(sample(s, 'vmfork_pool_claims', { pool: 'p1', state: 'claimed' }), 1);
  assert.equal(sample(s, 'vmfork_pool_claims', { pool: 'p1', state: 'releasing' }), 0);
  assert.equal(sample(s, 'vmfork_pool_size', { pool: 'p1', bound: 'max' }), 8);
  assert.equal(sample(s, 'vmfork_pool_size', { pool: 'p1', bound: 'min' }), 2);
  assert.equal(sample(s, 'vmfork_pool_size', { pool: 'p1', bound: 'spares' }), 1);
  assert.equal(sample(s, 'vmfork_pool_reservations'), 0);
  assert.equal(sample(s, 'vmfork_vms', { state: 'running', role: 'child' }), 3, 'p1-1, p1-2 and h2-vm');
  assert.equal(sample(s, 'vmfork_vms', { state: 'running', role: 'template' }), 0);
  assert.equal(sample(s, 'vmfork_tasks', { kind: 'pool-converge', state: 'succeeded' }), 1);
  assert.equal(sample(s, 'vmfork_tasks', { kind: 'pool-converge', state: 'failed' }), 1);
  assert.equal(sample(s, 'vmfork_tasks', { kind: 'pool-create', state: 'succeeded' }), 1, 'the old task is counted by the gauge');
  assert.ok((sample(s, 'process_resident_memory_bytes') ?? 0) > 0, "the server's own process metrics");
}));

test('the hosts: memory and vCPUs as placement counts them, datastores, QEMU processes and their memory', withFixture(async (f) => {
  const s = await scrape(f.app, f.token);
  assert.equal(sample(s, 'vmfork_host_up', { host: LOCAL_HOST_ID }), 1);
  assert.equal(sample(s, 'vmfork_host_up', { host: 'h2' }), 1);
  assert.equal(sample(s, 'vmfork_host_memory_bytes', { host: LOCAL_HOST_ID, kind: 'total' }), totalmem());
  assert.equal(sample(s, 'vmfork_host_memory_bytes', { host: LOCAL_HOST_ID, kind: 'reserved' }), P1_CHILDREN.length * HELD_MIB_PER_VM * 2 ** 20);
  assert.ok((sample(s, 'vmfork_host_memory_bytes', { host: LOCAL_HOST_ID, kind: 'free' }) ?? 0) > 0, 'MemAvailable');
  assert.equal(sample(s, 'vmfork_host_memory_bytes', { host: 'h2', kind: 'total' }), 8 * 2 ** 30);
  assert.equal(sample(s, 'vmfork_host_memory_bytes', { host: 'h2', kind: 'reserved' }), HELD_MIB_PER_VM * 2 ** 20);
  assert.equal(sample(s, 'vmfork_host_memory_bytes', { host: 'h2', kind: 'free' }), Math.floor(8 * 2 ** 30 * 0.9) - HELD_MIB_PER_VM * 2 ** 20);
  assert.equal(sample(s, 'vmfork_host_vcpus', { host: 'h2', kind: 'total' }), 8);
  assert.equal(sample(s, 'vmfork_host_vcpus', { host: 'h2', kind: 'reserved' }), 2);
  assert.equal(sample(s, 'vmfork_host_vcpus', { host: 'h2', kind: 'free' }), 6);
  assert.equal(sample(s, 'vmfork_host_vcpus', { host: LOCAL_HOST_ID, kind: 'reserved' }), P1_CHILDREN.length);
  assert.equal(sample(s, 'vmfork_host_vcpus', { host: LOCAL_HOST_ID, kind: 'total' }), undefined, 'the local host has no allocation ratio');
  assert.ok((sample(s, 'vmfork_datastore_bytes', { host: LOCAL_HOST_ID, datastore: 'default', kind: 'size' }) ?? 0) > 0);
  assert.ok((sample(s, 'vmfork_datastore_bytes', { host: LOCAL_HOST_ID, datastore: 'default', kind: 'free' }) ?? 0) > 0);
  assert.equal(sample(s, 'vmfork_datastore_bytes', { host: 'h2', datastore: 'default', kind: 'free' }), 5e9);
  assert.equal(sample(s, 'vmfork_datastore_bytes', { host: 'h2', datastore: 'default', kind: 'size' }), undefined);
  assert.equal(sample(s, 'vmfork_qemu_processes', { host: LOCAL_HOST_ID }), 1);
  assert.equal(sample(s, 'vmfork_qemu_processes', { host: 'h2' }), 0);
  const rss = sample(s, 'vmfork_qemu_resident_bytes', { vm: 'p1-1' }) ?? 0;
  assert.ok(rss > 10 * 2 ** 20 && rss < 8 * 2 ** 30, `p1-1's process (this test) is resident: ${rss}`);
}));

test('the histograms: what ended after the start is observed once, the older history never', withFixture(async (f) => {
  await f.addTask('t-1', 'pool-create', 'succeeded', 5);
  await f.markForked('p1-1', 1500);
  await f.markForked('p1-3', 2500);
  await insertReplica(f.deps.db, { id: 'r1', image_name: 'default', image_version: 'v1', phase1_digest: 'd', host_id: LOCAL_HOST_ID, datastore: 'default', state: 'ready', dir: '/r1', disks_json: '[]', phase1_json: JSON.stringify({ reboots: 1, mounts: {}, ms: { total: 90_000 }, copyMs: 12_000 }), last_error: null, created_at: new Date().toISOString(), updated_at: new Date().toISOString() }, await testActor('replica-create'));
  // a copy pulled from another host: its phase 1 ran there, only its copy counts here
  await insertReplica(f.deps.db, { id: 'r2', image_name: 'default', image_version: 'v1', phase1_digest: 'd', host_id: 'h2', datastore: 'default', state: 'ready', dir: '/r2', disks_json: '[]', phase1_json: JSON.stringify({ reboots: 1, mounts: {}, ms: { total: 90_000 }, copyMs: 30_000, copiedFrom: { replica: 'r1', host: LOCAL_HOST_ID } }), last_error: null, created_at: new Date().toISOString(), updated_at: new Date().toISOString() }, await testActor('replica-create'));
  let s = await scrape(f.app, f.token);
  assert.equal(sample(s, 'vmfork_task_duration_seconds_count', { kind: 'pool-create', state: 'succeeded' }), 1, 't-old ended before the start');
  assert.equal(sample(s, 'vmfork_task_duration_seconds_sum', { kind: 'pool-create', state: 'succeeded' }), 5);
  assert.equal(sample(s, 'vmfork_task_duration_seconds_bucket', { kind: 'pool-create', state: 'succeeded', le: '1' }), 0);
  assert.equal(sample(s, 'vmfork_task_duration_seconds_bucket', { kind: 'pool-create', state: 'succeeded', le: '5' }), 1);
  assert.equal(sample(s, 'vmfork_fork_ready_seconds_count', { pool: 'p1' }), 2);
  assert.equal(sample(s, 'vmfork_fork_ready_seconds_sum', { pool: 'p1' }), 4);
  assert.equal(sample(s, 'vmfork_phase1_seconds_count', { host: LOCAL_HOST_ID }), 1);
  assert.equal(sample(s, 'vmfork_phase1_seconds_sum', { host: LOCAL_HOST_ID }), 90);
  assert.equal(sample(s, 'vmfork_phase1_seconds_count', { host: 'h2' }), undefined);
  assert.equal(sample(s, 'vmfork_replica_copy_seconds_sum', { host: LOCAL_HOST_ID }), 12);
  assert.equal(sample(s, 'vmfork_replica_copy_seconds_sum', { host: 'h2' }), 30);

  // the next scrape observes only what ended since
  await f.addTask('t-2', 'pool-create', 'failed', 2);
  const beforeSecond = new Date();
  s = await scrape(f.app, f.token);
  assert.equal(sample(s, 'vmfork_task_duration_seconds_count', { kind: 'pool-create', state: 'succeeded' }), 1);
  assert.equal(sample(s, 'vmfork_task_duration_seconds_count', { kind: 'pool-create', state: 'failed' }), 1);
  assert.equal(sample(s, 'vmfork_fork_ready_seconds_count', { pool: 'p1' }), 2);
  assert.equal(sample(s, 'vmfork_phase1_seconds_count', { host: LOCAL_HOST_ID }), 1);
  // a refresh forks p1-1 again (a new forked_at), and a VM outside any pool is forked: each fork is observed once
  await f.markForked('p1-1', 500);
  await f.markForked('h2-vm', 700);
  s = await scrape(f.app, f.token);
  assert.equal(sample(s, 'vmfork_fork_ready_seconds_count', { pool: 'p1' }), 3);
  assert.equal(sample(s, 'vmfork_fork_ready_seconds_sum', { pool: 'p1' }), 4.5);
  assert.equal(sample(s, 'vmfork_fork_ready_seconds_count', { pool: '' }), 1);
  s = await scrape(f.app, f.token);
  assert.equal(sample(s, 'vmfork_fork_ready_seconds_count', { pool: 'p1' }), 3);
  // a task that ended a little before the last scrape but was committed after it (a writer's clock, a long
  // transaction) is still found, once
  await f.addTask('t-late', 'pool-resize', 'succeeded', 1, undefined, beforeSecond);
  s = await scrape(f.app, f.token);
  assert.equal(sample(s, 'vmfork_task_duration_seconds_count', { kind: 'pool-resize', state: 'succeeded' }), 1);
  s = await scrape(f.app, f.token);
  assert.equal(sample(s, 'vmfork_task_duration_seconds_count', { kind: 'pool-resize', state: 'succeeded' }), 1);
}));

test('vmfork_claim_seconds times each claim answered about an existing pool; a 404 or 401 adds no series', withFixture(async (f) => {
  const claim = (pool: string) => f.app.inject({ method: 'POST', url: `/v1/pools/${pool}/claim`, payload: {} });
  assert.equal((await claim('p1')).statusCode, 200);
  assert.equal((await claim('p1')).statusCode, 200);
  assert.equal((await claim('full')).statusCode, 409);
  assert.equal((await claim('made-up')).statusCode, 404);
  const s = await scrape(f.app, f.token);
  assert.equal(sample(s, 'vmfork_claim_seconds_count', { pool: 'p1', outcome: 'claimed' }), 2);
  assert.equal(sample(s, 'vmfork_claim_seconds_count', { pool: 'full', outcome: 'refused' }), 1);
  assert.equal(s.filter((x) => x.labels.pool === 'made-up').length, 0);
}, { claimRoute: (pool) => (pool === 'p1' ? 200 : pool === 'full' ? 409 : 404) }));

test('docs/metrics.md lists exactly the vmfork_ metrics served', withFixture(async (f) => {
  const r = await f.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${f.token}` } });
  const served = [...r.body.matchAll(/^# HELP (vmfork_\w+) /gm)].map((m) => m[1] as string).sort();
  const doc = readFileSync(new URL('../../../docs/metrics.md', import.meta.url), 'utf8');
  const documented = [...doc.matchAll(/^\| `(vmfork_\w+)` \|/gm)].map((m) => m[1] as string).sort();
  assert.deepEqual(documented, served);
}));
