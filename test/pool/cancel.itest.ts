/**
 * Cancel, end to end, against a real `vmfork serve` and real QEMU: `vmfork task cancel ID` stops a pool's task at
 * each of its steps — phase 1's boot, a phase-1 script that would run for an hour, the template's cold boot, the
 * children of a create, the children of a resize — and the pool is left as the state table says: a cancelled
 * create leaves nothing (no pool, VM, QEMU, lease, internal clone, half-made replica or template), a cancelled
 * resize keeps the children it made and is `failed` saying so, until a later resize completes it. Each cancel is
 * awaited by the event that says the step runs, never by a clock; how long it took is printed, never asserted.
 */
import { after, before, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { datastorePath } from '../../src/host/index.js';
import { listNamespaces } from '../../src/network/index.js';
import { currentProcess, getPool, listReplicaRows, listTemplates, listVms, poolVms } from '../../src/store/index.js';
import { followTask, type TaskEvent } from '../../src/task/index.js';
import { run, waitUntil } from '../../src/util/index.js';
import { takeCensus } from '../fixtures/leak-check.js';
import { CLI, createTestHome, ensureImage, qemuProcessesMatching, teardownHome, vmTest, VmTracker, type TestHome } from '../fixtures/ladder.js';

let th: TestHome;
let tracker: VmTracker;
let server: { proc: ChildProcess; url: string; token: string } | undefined;
/** What each cancel took, printed again at the end of the file (the closing note reports them). */
const timings: string[] = [];

/** A pool task under TCG on a loaded host: a new replica is two cold boots. */
const TASK_DEADLINE_MS = 20 * 60_000;

/** `vmfork serve` as a user runs it, on a free port; resolves once it says where it listens. */
async function startServer(): Promise<NonNullable<typeof server>> {
  const proc = spawn(process.execPath, [CLI, 'serve', '--listen', '127.0.0.1:0'], { env: { ...process.env, VMFORK_HOME: th.root }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stderr.on('data', (d: Buffer) => void (output += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`vmfork serve did not start: ${output}`)), 120_000);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`vmfork serve exited ${code}: ${output}`));
    });
    proc.stdout.on('data', (d: Buffer) => {
      output += d.toString();
      const m = /serving (http:\/\/\S+)/.exec(output);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  return { proc, url, token: readFileSync(join(th.root, 'api-token'), 'utf8').trim() };
}

async function api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  assert.ok(server, 'the server runs');
  const headers: Record<string, string> = { authorization: `Bearer ${server.token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${server.url}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  return { status: res.status, body: (await res.json()) as T };
}

interface Task {
  state: string;
  lastError: { message: string } | null;
}

function waitTask(id: string): Promise<Task> {
  return waitUntil(
    async () => {
      const t = (await api<Task>('GET', `/v1/tasks/${id}`)).body;
      return ['succeeded', 'failed', 'cancelled'].includes(t.state) ? t : undefined;
    },
    { deadlineMs: TASK_DEADLINE_MS, everyMs: 500, what: `task ${id} to end` },
  );
}

/** Follows the task's events (as the server records them) until one matches; the task ending first fails. */
async function waitForEvent(id: string, what: string, match: (e: TaskEvent) => boolean): Promise<TaskEvent> {
  const found = new AbortController();
  let hit: TaskEvent | undefined;
  const seen: string[] = [];
  const onEvent = (e: TaskEvent): void => {
    seen.push(`${e.kind}: ${e.message}`);
    if (hit || !match(e)) return;
    hit = e;
    found.abort();
  };
  await followTask(th, id, onEvent, { signal: AbortSignal.any([found.signal, AbortSignal.timeout(TASK_DEADLINE_MS)]), pollMs: 200 });
  assert.ok(hit, `task ${id} never reached ${what}; its events:\n${seen.join('\n')}`);
  return hit;
}

/**
 * `vmfork task cancel ID --wait`, as a user types it; records how long it took from the request to `cancelled`:
 * as the user saw it (the CLI's run), and as the server recorded it (`cancelling` → `cancelled`).
 */
async function cancel(t: TestContext, id: string, where: string): Promise<void> {
  const t0 = performance.now();
  const r = await run(process.execPath, [CLI, 'task', 'cancel', id, '--wait', '--json'], { env: { ...process.env, VMFORK_HOME: th.root, VMFORK_URL: server?.url ?? '' }, allowFailure: true, timeoutMs: TASK_DEADLINE_MS });
  const seenMs = performance.now() - t0;
  assert.equal(r.code, 0, `vmfork task cancel ${id}: ${r.stdout}${r.stderr}`);
  assert.equal((JSON.parse(r.stdout) as Task).state, 'cancelled');
  const states: TaskEvent[] = [];
  await followTask(th, id, (e) => void (e.kind === 'state' && states.push(e)), { pollMs: 200, signal: AbortSignal.timeout(60_000) });
  const at = (s: string): number => Date.parse(states.find((e) => e.data?.state === s)?.at ?? '');
  const line = `cancel ${where}: ${(seenMs / 1000).toFixed(1)} s from \`vmfork task cancel\` to cancelled; the server's cancelling → cancelled ${((at('cancelled') - at('cancelling')) / 1000).toFixed(1)} s`;
  timings.push(line);
  t.diagnostic(line);
}

function spec(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name, image: 'pool', provisioning: 'up-front', persistent: false, size: { max: 3 }, naming: { pattern: `${name}-{n:2}` }, disks: { disposable: '128M', swap: '32M' }, memory: '384M', ...extra };
}

async function create(name: string, extra: Record<string, unknown> = {}): Promise<string> {
  const accepted = await api<{ taskId: string }>('POST', '/v1/pools', spec(name, extra));
  assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
  return accepted.body.taskId;
}

/**
 * Nothing of a cancelled create is left: no pool, no VM (child, internal clone, template parent), no QEMU, lease,
 * tap or VM directory; every replica and template is ready (none half-made), and the datastore holds only the
 * ready replicas' files.
 */
async function assertNothingLeft(pool: string, expect: { replicas: number; templates: number }): Promise<void> {
  assert.equal(await getPool(th.db, pool), undefined, `no pool ${pool}`);
  assert.deepEqual(await takeCensus(th), [], 'no VM, QEMU, lease, tap or VM directory left');
  assert.deepEqual(await qemuProcessesMatching(`${th.root}/`), [], 'no QEMU of this data dir runs (a template parent neither)');
  const replicas = await listReplicaRows(th.db);
  assert.deepEqual(replicas.map((r) => r.state), Array<string>(expect.replicas).fill('ready'), 'only ready replicas');
  const dirs = await readdir(join(datastorePath(th.home), 'replicas')).catch(() => [] as string[]);
  assert.deepEqual(dirs.sort(), replicas.map((r) => r.id).sort(), 'the datastore holds only the ready replicas\' files');
  assert.deepEqual((await listTemplates(th.db)).map((r) => r.state), Array<string>(expect.templates).fill('ready'), 'only ready templates');
}

before(async () => {
  th = await createTestHome('pool-cancel');
  tracker = new VmTracker(th);
  await ensureImage(th, 'pool');
  server = await startServer();
});

after(async () => {
  if (server) {
    for (const p of ['grow']) {
      const r = await api<{ taskId?: string }>('DELETE', `/v1/pools/${p}`).catch(() => undefined);
      if (r?.status === 202 && r.body.taskId) await waitTask(r.body.taskId);
    }
    const s = server;
    server = undefined;
    const exited = new Promise((r) => s.proc.once('exit', r));
    s.proc.kill('SIGTERM');
    await exited;
  }
  await tracker.teardown();
  process.stdout.write(`\n${timings.join('\n')}\n`);
  const prefix = await th.netnsPrefix();
  assert.deepEqual(await teardownHome(th), [], 'the cancel test home left nothing behind');
  assert.deepEqual((await listNamespaces()).filter((n) => n.startsWith(prefix)), []);
});

vmTest('a create cancelled while phase 1 boots its internal clone leaves nothing: no pool, clone, QEMU or half-made replica', () => tracker, async (t) => {
  const id = await create('boot');
  await waitForEvent(id, 'phase 1\'s boot', (e) => e.kind === 'step' && e.message === 'phase 1: boot internal clone');
  // its QEMU runs: the cancel lands in the wait for the guest agent (a cold boot under TCG is tens of seconds)
  const clone = await waitUntil(async () => (await listVms(th.db, { role: 'clone' })).find((v) => v.state === 'starting'), { deadlineMs: 120_000, what: 'the internal clone to start' });
  await waitUntil(() => currentProcess(th.db, clone.name), { deadlineMs: 120_000, what: `${clone.name}'s QEMU to run` });
  await cancel(t, id, 'during phase 1\'s boot');
  await assertNothingLeft('boot', { replicas: 0, templates: 0 });
});

vmTest('a create cancelled while a phase-1 script runs (one that would run for an hour) leaves nothing', () => tracker, async (t) => {
  const id = await create('hang', { customize: { common: [{ path: '/usr/local/lib/vmfork/common/91-hang.sh', timeoutSeconds: 3600 }] } });
  await waitForEvent(id, 'the common script', (e) => e.kind === 'step' && e.message.startsWith('phase 1: common script') && e.message.includes('91-hang.sh'));
  await cancel(t, id, 'during a phase-1 script');
  await assertNothingLeft('hang', { replicas: 0, templates: 0 });
});

vmTest('a create cancelled while its template boots leaves no pool and no template; the replica it made is kept, ready', () => tracker, async (t) => {
  const id = await create('tpl');
  await waitForEvent(id, 'the template\'s boot', (e) => e.kind === 'template' && e.message.startsWith('freezing replica'));
  // its parent's QEMU runs: the cancel lands in the wait for the parent's guest agent
  await waitUntil(async () => (await listTemplates(th.db)).find((r) => r.state === 'booting'), { deadlineMs: 120_000, what: 'the template\'s parent to boot' });
  await cancel(t, id, 'during the template\'s boot');
  await assertNothingLeft('tpl', { replicas: 1, templates: 0 });
});

vmTest('a create cancelled during its children leaves nothing: the children made are destroyed with the pool', () => tracker, async (t) => {
  const id = await create('kids');
  for (const n of ['kids-01', 'kids-02', 'kids-03']) tracker.track(n);
  await waitForEvent(id, 'a child forking', (e) => e.kind === 'child' && e.data?.state === 'forking');
  await cancel(t, id, 'during a create\'s children');
  await assertNothingLeft('kids', { replicas: 1, templates: 1 });
});

vmTest('a resize cancelled between children keeps the children it made, the pool failed saying so; a later resize completes it', () => tracker, async (t) => {
  const made = await waitTask(await create('grow', { size: { max: 1 } }));
  for (const n of ['grow-01', 'grow-02', 'grow-03', 'grow-04']) tracker.track(n);
  assert.equal(made.state, 'succeeded', JSON.stringify(made.lastError));
  const resize = await api<{ taskId: string }>('PATCH', '/v1/pools/grow', { max: 4 });
  assert.equal(resize.status, 202);
  await waitForEvent(resize.body.taskId, 'a child forking', (e) => e.kind === 'child' && e.data?.state === 'forking');
  await cancel(t, resize.body.taskId, 'during a resize\'s children');
  const pool = await getPool(th.db, 'grow');
  assert.equal(pool?.state, 'failed');
  assert.match(pool?.last_error ?? '', /cancelled/);
  const kept = await poolVms(th.db, 'grow');
  // every child left is whole (running): the one being forked when the cancel came was finished or rolled back
  assert.deepEqual(kept.map((v) => v.state), Array<string>(kept.length).fill('running'), JSON.stringify(kept.map((v) => [v.name, v.state])));
  assert.ok(kept.some((v) => v.name === 'grow-01'), 'the child from before the resize stays');
  t.diagnostic(`children kept after the cancelled resize: ${kept.map((v) => v.name).join(', ')}`);
  const again = await api<{ taskId: string }>('PATCH', '/v1/pools/grow', { max: 4 });
  assert.equal(again.status, 202);
  const done = await waitTask(again.body.taskId);
  assert.equal(done.state, 'succeeded', JSON.stringify(done.lastError));
  const grown = (await poolVms(th.db, 'grow')).map((v) => [v.name, v.state]);
  assert.deepEqual(grown, [['grow-01', 'running'], ['grow-02', 'running'], ['grow-03', 'running'], ['grow-04', 'running']]);
  assert.equal((await getPool(th.db, 'grow'))?.state, 'ready');
});
