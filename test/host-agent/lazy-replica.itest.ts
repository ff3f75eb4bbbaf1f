import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitUntil } from '../../src/util/index.js';
import { isRoot } from '../network/itest-helpers.js';
import { TEST_HOOKS } from '../fixtures/ladder.js';
import { cliJson, startDatacenter, type TestDatacenter, type TestHost } from '../fixtures/test-hosts.js';
import { withTempDir } from '../helpers/temp-dir.js';

const skip = isRoot() ? false : 'needs root (network namespaces, PostgreSQL as its user, QEMU, the userfaultfd sysctl)';
const LONG_MS = 15 * 60_000;
const SYSCTL = '/proc/sys/vm/unprivileged_userfaultfd';

const json = <T>(dc: TestDatacenter, host: TestHost, args: string[]): Promise<T> => cliJson<T>(dc, host, args, LONG_MS);

interface FirstReady {
  ms: number | null;
  lazy: boolean;
  fromHost?: string;
  skipped?: string;
  settled?: { memoryMs?: number; disksMs?: number; error?: string };
}
interface TaskJson {
  state: string;
  result: { firstReady?: Record<string, FirstReady>; copies?: Record<string, number> } | null;
}
interface PoolJson {
  state: string;
  hosts: Record<string, number>;
  vms: { name: string; state: string; host: string }[];
}

test("lazy replica: a pool spread over h1 and h2 with placement.lazyReplica — phase 1 on h1 only; h2's first child starts before h2 has the replica (memory by postcopy from h1's template, disk over NBD, copied on read), then stands alone (its disks mirrored into images of its own, no backing); the replica is copied to h2 meanwhile; both children verified distinct", { skip },
  withTempDir('vmfork-lazy-', async (root) => {
    const dc = await startDatacenter(root, ['h1', 'h2']);
    let problems: string[] = [];
    // QEMU runs confined to its own uid here, and a confined QEMU may use userfaultfd (postcopy's destination) only
    // when the host allows it to every user: allowed for this test's run, and the value put back
    const before = readFileSync(SYSCTL, 'utf8').trim();
    writeFileSync(SYSCTL, '1');
    try {
      const [h1, h2] = dc.hosts as [TestHost, TestHost];
      const keyText = randomBytes(32).toString('hex');
      for (const h of dc.hosts) {
        writeFileSync(join(h.home, '..', 'fleet.key'), keyText, { mode: 0o600 });
        await dc.startAgent(h, ['--heartbeat-seconds', '0.5', '--fleet-key-file', join(h.home, '..', 'fleet.key')]);
      }
      dc.startServer(h1);
      await waitUntil(async () => (await dc.cli(h1, ['pool', 'list', '--json'])).code === 0 || undefined, { deadlineMs: 60_000, everyMs: 250, what: 'the server on h1 to answer' });
      const built = await dc.cli(h1, ['image', 'build', '--name', 'default', '--hooks', TEST_HOOKS], { timeoutMs: 1_800_000 });
      assert.equal(built.code, 0, built.stderr);
      assert.equal((await dc.cli(h1, ['network', 'create', 'fleet', '--cidr', '10.79.0.0/24'])).code, 0);
      const file = join(root, 'lazy.json');
      writeFileSync(file, JSON.stringify({ name: 'lz', image: 'default', datastore: 'main', network: 'fleet', size: { max: 2 }, naming: { pattern: 'lz-{n}' }, disks: { disposable: '64M', swap: '16M' }, memory: '384M', placement: { hosts: ['h1', 'h2'], strategy: 'spread', lazyReplica: true } }));

      const accepted = await json<{ taskId: string }>(dc, h1, ['pool', 'create', '-f', file]);
      const watched = await dc.cli(h1, ['task', 'watch', accepted.taskId], { timeoutMs: LONG_MS });
      assert.equal(watched.code, 0, watched.stderr + watched.stdout);
      const task = await json<TaskJson>(dc, h1, ['task', 'show', accepted.taskId]);
      const first = task.result?.firstReady ?? {};
      assert.equal(first.h1?.lazy, false, `h1 made the replica and forks from it: ${JSON.stringify(first)}`);
      assert.equal(first.h2?.lazy, true, `h2's first child came from h1's template: ${JSON.stringify(first)}`);
      assert.equal(first.h2?.fromHost, 'h1');
      assert.equal(task.result?.copies?.h2, undefined, 'no copy before the children step: h2 pulled it after its first child');
      assert.equal(typeof first.h2?.settled?.memoryMs, 'number', `the child's memory all arrived: ${JSON.stringify(first.h2?.settled)}`);
      assert.equal(typeof first.h2?.settled?.disksMs, 'number', `the child's disks streamed: ${JSON.stringify(first.h2?.settled)}`);

      const pool = await json<PoolJson>(dc, h1, ['pool', 'show', 'lz']);
      assert.equal(pool.state, 'ready');
      assert.deepEqual(pool.hosts, { h1: 1, h2: 1 });
      const lazyChild = pool.vms.find((v) => v.host === 'h2')?.name as string;

      // the replica reached h2 while its first child ran: phase 1 once, one copy
      const map = (await json<{ hostId: string; state: string; copiedFrom?: { host: string } | null }[]>(dc, h1, ['replica', 'list'])).filter((r) => r.state === 'ready');
      assert.deepEqual(map.map((r) => [r.hostId, r.copiedFrom?.host ?? null]).sort(), [['h1', null], ['h2', 'h1']]);

      // the lazy child stands alone: its disk was mirrored into a new image of its own, with no backing file (what
      // the export said was zero skipped), and the overlay over NBD is gone
      const dir = join(h2.home, 'vms', lazyChild);
      const full = readdirSync(dir).filter((f) => /^disk0-full-.*\.qcow2$/.test(f));
      assert.equal(full.length, 1, `one promoted image of disk0 in ${dir}: ${readdirSync(dir).join(' ')}`);
      assert.ok(!readdirSync(dir).includes('disk.qcow2'), 'the overlay over NBD is removed');
      const info = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output', 'json', join(dir, full[0] as string)], { encoding: 'utf8' })) as { 'backing-filename'?: string };
      assert.equal(info['backing-filename'], undefined, `${full[0] ?? ''} has a backing file: ${info['backing-filename'] ?? ''}`);
      // and it works on: a command through its agent reads files it had never read before the stream
      const exec = await dc.cli(h1, ['vm', 'exec', lazyChild, '--', 'sh', '-c', 'cat /usr/bin/* | wc -c; hostname'], { timeoutMs: 300_000 });
      assert.equal(exec.code, 0, exec.stderr + exec.stdout);
      assert.match(exec.stdout, new RegExp(lazyChild));

      const verified = await dc.cli(h1, ['verify', ...pool.vms.map((v) => v.name), '--json'], { timeoutMs: 300_000 });
      assert.equal(verified.code, 0, verified.stdout);

      const removed = await dc.cli(h1, ['pool', 'rm', 'lz', '--wait'], { timeoutMs: LONG_MS });
      assert.equal(removed.code, 0, removed.stderr + removed.stdout);
    } finally {
      writeFileSync(SYSCTL, before);
      problems = await dc.close();
    }
    assert.deepEqual(problems, []);
  }),
);
