import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitUntil } from '../../src/util/index.js';
import { isRoot } from '../network/itest-helpers.js';
import { TEST_HOOKS } from '../fixtures/ladder.js';
import { cliJson, startDatacenter, type TestDatacenter, type TestHost } from '../fixtures/test-hosts.js';
import { withTempDir } from '../helpers/temp-dir.js';

const skip = isRoot() ? false : 'needs root (network namespaces, PostgreSQL as its user, QEMU)';
const LONG_MS = 15 * 60_000;

const json = <T>(dc: TestDatacenter, host: TestHost, args: string[]): Promise<T> => cliJson<T>(dc, host, args, LONG_MS);

test('two API servers on one store: the one that accepted a pool is kill -9ed mid-task, the other resumes the task, PostgreSQL is restarted meanwhile, and the pool becomes ready; its progress is followed through the other server', { skip },
  withTempDir('vmfork-servers-', async (root) => {
    const dc = await startDatacenter(root, ['h1', 'h2']);
    let problems: string[] = [];
    try {
      const [h1, h2] = dc.hosts as [TestHost, TestHost];
      const keyText = randomBytes(32).toString('hex');
      for (const h of dc.hosts) {
        writeFileSync(join(h.home, '..', 'fleet.key'), keyText, { mode: 0o600 });
        await dc.startAgent(h, ['--heartbeat-seconds', '0.5', '--lost-after-seconds', '5', '--fleet-key-file', join(h.home, '..', 'fleet.key')]);
      }
      const a = dc.startServer(h1);
      dc.startServer(h2);
      for (const h of [h1, h2]) await waitUntil(async () => (await dc.cli(h, ['pool', 'list', '--json'])).code === 0 || undefined, { deadlineMs: 60_000, everyMs: 250, what: `the server on ${h.name} to answer` });
      const built = await dc.cli(h1, ['image', 'build', '--name', 'default', '--hooks', TEST_HOOKS], { timeoutMs: 1_800_000 });
      assert.equal(built.code, 0, built.stderr);
      const file = join(root, 'desk.json');
      writeFileSync(file, JSON.stringify({ name: 'desk', image: 'default', datastore: 'main', size: { max: 2 }, naming: { pattern: 'desk-{n}' }, disks: { disposable: '64M', swap: '16M' }, memory: '384M', placement: { hosts: ['h1', 'h2'] } }));

      // accepted by the server on h1; killed while the task waits on h1's agent (phase 1)
      const accepted = await json<{ taskId: string }>(dc, h1, ['pool', 'create', '-f', file]);
      await waitUntil(
        async () => {
          const jobs = await json<{ op: string; state: string }[]>(dc, h1, ['host', 'jobs', 'h1']);
          return jobs.some((j) => j.op === 'replica-make' && j.state === 'active') || undefined;
        },
        { deadlineMs: 120_000, everyMs: 250, what: "the pool's phase 1 to start on h1's agent" },
      );
      const before = await json<{ owner: { pid: number } | null }>(dc, h2, ['task', 'show', accepted.taskId]);
      a.child.kill('SIGKILL');
      await a.exited;
      // and PostgreSQL restarted once the other server has taken the task over: the task still finishes
      await waitUntil(
        async () => {
          const t = await json<{ state: string; owner: { pid: number } | null }>(dc, h2, ['task', 'show', accepted.taskId]);
          return t.state === 'succeeded' || (t.owner !== null && t.owner.pid !== before.owner?.pid) ? t : undefined;
        },
        { deadlineMs: 120_000, everyMs: 500, what: 'the server on h2 to take the task over' },
      );
      await dc.restartDb();

      // the server on h2 finds the task's server gone, takes the task over and runs it to the end; its events
      // reach a follower of h2's server
      const watched = await dc.cli(h2, ['task', 'watch', accepted.taskId, '--json'], { timeoutMs: LONG_MS });
      assert.equal(watched.code, 0, watched.stderr + watched.stdout);
      const lines = watched.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { kind?: string; message?: string });
      assert.ok(lines.some((e) => e.kind === 'recovered' && /died while the task was/.test(e.message ?? '')), `the takeover is one of the task's events: ${watched.stdout.slice(0, 2000)}`);
      const task = await json<{ state: string }>(dc, h2, ['task', 'show', accepted.taskId]);
      assert.equal(task.state, 'succeeded');
      const pool = await json<{ state: string; hosts: Record<string, number> }>(dc, h2, ['pool', 'show', 'desk']);
      assert.equal(pool.state, 'ready');
      assert.deepEqual(pool.hosts, { h1: 1, h2: 1 });
      const removed = await dc.cli(h2, ['pool', 'rm', 'desk', '--wait'], { timeoutMs: LONG_MS });
      assert.equal(removed.code, 0, removed.stderr + removed.stdout);
    } finally {
      problems = await dc.close();
    }
    assert.deepEqual(problems, []);
  }),
);
