import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isVmforkError } from '../../src/errors.js';
import { startJobWorker } from '../../src/host-agent/job-worker.js';
import { Slots } from '../../src/host-agent/step-context.js';
import { hostQueue, JobQueue, parseHostJob, runOnHost } from '../../src/jobs/index.js';
import { markHostDown, openStore, registerAgentHost, type Db } from '../../src/store/index.js';
import { createLogger, waitUntil } from '../../src/util/index.js';
import { testDialect, testHomeLayout } from '../helpers/store.js';

// pg-boss lives on PostgreSQL: these run in scripts/test-pg.sh's pass
const skip = testDialect() === 'postgres' ? false : "the job queue is PostgreSQL's (pg-boss): run by scripts/test-pg.sh";
const log = createLogger(undefined);

interface Fleet {
  url: string;
  db: Db;
  queue: JobQueue;
  dir: string;
  close(): Promise<void>;
}

async function fleet(hosts: readonly string[]): Promise<Fleet> {
  const dir = mkdtempSync(join(tmpdir(), 'vmfork-jobs-'));
  const home = await testHomeLayout(dir);
  const db = await openStore(home.db);
  for (const id of hosts) {
    await registerAgentHost(db, { id, hostname: 'test', protocol: 1, pid: process.pid, listen: 'http://127.0.0.1:1', cpus: 2, cpuAllocationRatio: 16, memoryBytes: 1 << 30, accel: 'tcg', accelWhy: 'test', qemuVersion: '7.2', lostAfterMs: 3000, datastores: [] });
  }
  const queue = await JobQueue.open(home.db, log);
  return {
    url: home.db,
    db,
    queue,
    dir,
    close: async () => {
      await queue.stop();
      await db.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    return isVmforkError(err) ? err.code : String(err);
  }
}

test("a job sent to a host is fetched only from that host's queue", { skip }, async () => {
  const f = await fleet(['a', 'b']);
  try {
    const id = await f.queue.send('a', { op: 'vm-destroy', name: 'x' });
    await f.queue.ensureHostQueue('b');
    assert.deepEqual(await f.queue.fetch('b', 5), []);
    const taken = await f.queue.fetch('a', 5);
    assert.deepEqual(taken.map((j) => [j.id, j.name]), [[id, hostQueue('a')]]);
    assert.deepEqual(await f.queue.fetch('a', 5), [], 'an active job is not handed out twice');
  } finally {
    await f.close();
  }
});

test("a job taken by an agent that died is failed by its successor and waits for the queue's retry", { skip }, async () => {
  const f = await fleet(['a']);
  try {
    const id = await f.queue.send('a', { op: 'vm-stop', name: 'x' });
    await f.queue.fetch('a', 1);
    assert.equal((await f.queue.get('a', id))?.state, 'active');
    assert.deepEqual(await f.queue.failLeftActive('a', 'its agent died'), [id]);
    assert.equal((await f.queue.get('a', id))?.state, 'retry');
    assert.deepEqual(await f.queue.failLeftActive('a', 'again'), [], 'nothing else was active');
  } finally {
    await f.close();
  }
});

test("a step's error comes back to the sender with its code; a job of an op the agent does not know is answered VMFORK_HOST_PROTOCOL", { skip }, async () => {
  const f = await fleet(['a']);
  const home = await testHomeLayout(f.dir);
  const worker = startJobWorker({ deps: { db: f.db, home: { ...home, db: f.url }, log, hostId: 'a' }, queue: f.queue, listenHost: '127.0.0.1', fleetKey: undefined, copies: new Slots(1), exports: new Map(), serves: new Map() });
  try {
    assert.equal(await codeOf(runOnHost(f.queue, f.db, 'a', { op: 'vm-destroy', name: 'nosuch' })), 'VMFORK_VM_NOT_FOUND');
    const raw = await f.queue.boss.send(hostQueue('a'), { op: 'vm-teleport', name: 'x' });
    assert.ok(raw);
    const answered = await waitForEnd(f.queue, 'a', raw);
    assert.equal(answered.state, 'completed');
    assert.match(JSON.stringify(answered.output), /VMFORK_HOST_PROTOCOL.*vm-teleport/);
  } finally {
    await worker.stop();
    await f.close();
  }
});

function waitForEnd(queue: JobQueue, host: string, id: string): Promise<{ state: string; output: unknown }> {
  return waitUntil(async () => {
    const j = await queue.get(host, id);
    return j && ['completed', 'failed', 'cancelled'].includes(j.state) ? j : undefined;
  }, { deadlineMs: 60_000, everyMs: 100, what: `job ${id} to end` });
}

test('no job is sent to a host without an agent, or to one that is down', { skip }, async () => {
  const f = await fleet(['a']);
  try {
    assert.equal(await codeOf(runOnHost(f.queue, f.db, 'h9', { op: 'vm-stop', name: 'x' })), 'VMFORK_HOST_NOT_FOUND');
    assert.equal(await markHostDown(f.db, 'a', 1), true);
    assert.equal(await codeOf(runOnHost(f.queue, f.db, 'a', { op: 'vm-stop', name: 'x' })), 'VMFORK_HOST_STATE');
    await f.queue.ensureHostQueue('h9');
    await f.queue.ensureHostQueue('a');
    assert.deepEqual([...(await f.queue.fetch('h9', 5)), ...(await f.queue.fetch('a', 5))], [], 'nothing was queued');
  } finally {
    await f.close();
  }
});

test('jobs are checked on arrival: an op this agent does not know, or a field out of range, is refused by name', () => {
  assert.throws(() => parseHostJob({ op: 'vm-teleport' }), (e: unknown) => isVmforkError(e) && e.code === 'VMFORK_HOST_PROTOCOL' && /vm-teleport/.test(e.message));
  assert.throws(() => parseHostJob({ op: 'vm-boot', image: 'default', name: 'x', cpus: 0 }), (e: unknown) => isVmforkError(e) && e.code === 'VMFORK_HOST_PROTOCOL');
  assert.deepEqual(parseHostJob({ op: 'vm-stop', name: 'x', timeoutMs: 5000 }), { op: 'vm-stop', name: 'x', timeoutMs: 5000 });
});
