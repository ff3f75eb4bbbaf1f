import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256File, waitUntil } from '../../src/util/index.js';
import { isRoot } from '../network/itest-helpers.js';
import { TEST_HOOKS } from '../fixtures/ladder.js';
import { startDatacenter, type TestDatacenter, type TestHost } from '../fixtures/test-hosts.js';
import { withTempDir } from '../helpers/temp-dir.js';

const skip = isRoot() ? false : 'needs root (network namespaces, PostgreSQL as its user, QEMU)';
const LONG_MS = 20 * 60_000;

interface ReplicaJson {
  id: string;
  state: string;
  hostId: string;
  datastore: string;
  phase1Digest: string;
  disks: (Disk & { size: number })[];
  phase1: { seconds: number; copySeconds: number } | null;
  copiedFrom: { replica: string; host: string } | null;
}

interface Disk {
  id: string;
  path: string;
  sha256: string;
}

async function json<T>(dc: TestDatacenter, host: TestHost, args: string[]): Promise<T> {
  const r = await dc.cli(host, [...args, '--json'], { timeoutMs: LONG_MS });
  assert.equal(r.code, 0, `vmfork ${args.join(' ')}: ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as T;
}

/** The replica map, through the API of the server on h1 (the fleet's store). */
async function replicas(dc: TestDatacenter, h1: TestHost): Promise<ReplicaJson[]> {
  const r = await dc.cli(h1, ['replica', 'list', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as ReplicaJson[];
}

function disksOf(all: ReplicaJson[], id: string): Disk[] {
  const r = all.find((x) => x.id === id);
  assert.ok(r, `replica ${id} is listed`);
  return r.disks;
}

test("a replica made once on h1 (phase 1 there) is copied to h2 and h3 by their agents over NBD with TLS-PSK, byte for byte (sha256), reused when there, refused when it arrives changed; replica list shows each host's copy", { skip },
  withTempDir('vmfork-replicas-', async (root) => {
    const dc = await startDatacenter(root, ['h1', 'h2', 'h3']);
    let problems: string[] = [];
    try {
      const [h1, h2, h3] = dc.hosts as [TestHost, TestHost, TestHost];
      const keyText = randomBytes(32).toString('hex');
      for (const h of dc.hosts) {
        writeFileSync(join(h.home, '..', 'fleet.key'), keyText, { mode: 0o600 });
        await dc.startAgent(h, ['--heartbeat-seconds', '0.5', '--lost-after-seconds', '3', '--fleet-key-file', join(h.home, '..', 'fleet.key'), '--max-copies', '1']);
      }
      // a server on the fleet's store, in h1: `replica list` reads the map through it
      dc.startServer(h1);
      await waitUntil(async () => (await dc.cli(h1, ['replica', 'list', '--json'])).code === 0 || undefined, { deadlineMs: 60_000, everyMs: 250, what: 'the server on h1 to answer' });
      const built = await dc.cli(h1, ['image', 'build', '--name', 'default', '--hooks', TEST_HOOKS], { timeoutMs: 1_800_000 });
      assert.equal(built.code, 0, built.stderr);
      const specFile = join(root, 'desk.json');
      writeFileSync(specFile, JSON.stringify({ name: 'desk', image: 'default', datastore: 'main', size: { max: 2 }, naming: { pattern: 'desk-{n}' }, persistent: false, disks: { disposable: '64M', swap: '16M' }, memory: '384M' }));

      const made = await json<{ replica: string; host: string; reused: boolean }>(dc, h1, ['replica', 'create', '--host', 'h1', '-f', specFile]);
      assert.deepEqual([made.host, made.reused], ['h1', false]);

      // both copies asked at once, each pulled by its own host's agent from h1's
      const [to2, to3] = await Promise.all([h2, h3].map((h) => json<{ replica: string; host: string; fromHost: string; reused: boolean }>(dc, h1, ['replica', 'copy', made.replica, '--to-host', h.name, '--datastore', 'main'])));
      assert.deepEqual([to2?.host, to2?.fromHost, to2?.reused], ['h2', 'h1', false]);
      assert.deepEqual([to3?.host, to3?.fromHost, to3?.reused], ['h3', 'h1', false]);
      const map = await replicas(dc, h1);
      const source = disksOf(map, made.replica);
      for (const copy of [to2!, to3!]) {
        const disks = disksOf(map, copy.replica);
        assert.deepEqual(map.find((r) => r.id === copy.replica)?.copiedFrom, { replica: made.replica, host: 'h1' });
        assert.deepEqual(disks.map((d) => [d.id, d.sha256]), source.map((d) => [d.id, d.sha256]), 'the same disks, the same bytes');
        for (const d of disks) {
          assert.ok(d.path.startsWith(copy.host === 'h2' ? h2.datastore : h3.datastore), `${d.path} is on the receiving host's datastore`);
          assert.equal(await sha256File(d.path), d.sha256, 'the file on disk is what was recorded');
        }
      }
      const again = await json<{ replica: string; reused: boolean }>(dc, h1, ['replica', 'copy', made.replica, '--to-host', 'h2', '--datastore', 'main']);
      assert.deepEqual([again.replica, again.reused], [to2?.replica, true]);

      // replica list shows each host's copy
      const listed = await replicas(dc, h1);
      const figures = listed.map((r) => `${r.hostId}: phase 1 ${r.phase1?.seconds ?? '-'} s, copy ${r.phase1?.copySeconds ?? '-'} s, ${r.disks.reduce((n, d) => n + d.size, 0)} bytes`);
      process.stdout.write(`# replica figures (this machine): ${figures.join('; ')}\n`);
      assert.deepEqual(listed.map((r) => [r.hostId, r.state, r.datastore, r.phase1Digest]).sort(), [
        ['h1', 'ready', 'main', listed[0]?.phase1Digest],
        ['h2', 'ready', 'main', listed[0]?.phase1Digest],
        ['h3', 'ready', 'main', listed[0]?.phase1Digest],
      ]);

      // the source changes under its seal: h3's next copy is refused, and rolled back (no record, no files)
      const sourceDisk = source[0]!;
      chmodSync(sourceDisk.path, 0o600);
      appendFileSync(sourceDisk.path, Buffer.from('not the sealed bytes'));
      // removed by h3's agent (the server on h1 sends it there), with its files
      const gone = await dc.cli(h1, ['replica', 'rm', to3!.replica]);
      assert.equal(gone.code, 0, gone.stderr);
      assert.equal(existsSync(join(h3.datastore, 'replicas', to3!.replica)), false);
      assert.match(readFileSync(join(h3.home, 'logs', 'vmfork.log'), 'utf8'), /"op":"replica-rm"/, "run by h3's agent");
      const refused = await dc.cli(h1, ['replica', 'copy', made.replica, '--to-host', 'h3', '--datastore', 'main'], { timeoutMs: LONG_MS });
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /VMFORK_REPLICA_CORRUPT/);
      assert.equal(existsSync(join(h3.datastore, 'replicas', to3!.replica)), false, 'the refused copy left no files');
      const after = (await replicas(dc, h1)).map((r) => r.hostId).sort();
      assert.deepEqual(after, ['h1', 'h2']);
    } finally {
      problems = await dc.close();
    }
    assert.deepEqual(problems, [], 'the datacenter left nothing behind');
  }));
