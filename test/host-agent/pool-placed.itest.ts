import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitUntil } from '../../src/util/index.js';
import { isRoot } from '../network/itest-helpers.js';
import { TEST_HOOKS } from '../fixtures/ladder.js';
import { cliJson, startDatacenter, type RunningAgent, type TestDatacenter, type TestHost } from '../fixtures/test-hosts.js';
import { withTempDir } from '../helpers/temp-dir.js';

const skip = isRoot() ? false : 'needs root (network namespaces, PostgreSQL as its user, QEMU)';
const LONG_MS = 15 * 60_000;

const json = <T>(dc: TestDatacenter, host: TestHost, args: string[]): Promise<T> => cliJson<T>(dc, host, args, LONG_MS);

interface PoolJson {
  state: string;
  hosts: Record<string, number>;
  vms: { name: string; state: string; host: string }[];
  replica: string | null;
}
/** Where a child is and in what state: the fields these checks are about (a child view has more, and gains more). */
const where = (v: PoolJson['vms'][number] | undefined): Pick<PoolJson['vms'][number], 'name' | 'state' | 'host'> | undefined =>
  v && { name: v.name, state: v.state, host: v.host };

interface ReplicaJson {
  id: string;
  hostId: string;
  state: string;
  copiedFrom?: { replica: string; host: string } | null;
}

test("a pool placed over three hosts (spread): phase 1 once, one replica copy per other host, each host forks its children from its own template; children unique across hosts (vmfork verify); an unknown host refused; h2's agent killed: its child replaced on another host under a new name, and destroyed by h2's agent when it is back; a child on another host claimed and released: refreshed there by its agent, then powered off: destroyed there and made again; pool rm removes them from every host", { skip },
  withTempDir('vmfork-placed-', async (root) => {
    const dc = await startDatacenter(root, ['h1', 'h2', 'h3']);
    let problems: string[] = [];
    try {
      const [h1, h2] = dc.hosts as [TestHost, TestHost, TestHost];
      const keyText = randomBytes(32).toString('hex');
      const agentArgs = (h: TestHost): string[] => ['--heartbeat-seconds', '0.5', '--lost-after-seconds', '5', '--fleet-key-file', join(h.home, '..', 'fleet.key')];
      const agents = new Map<string, RunningAgent>();
      for (const h of dc.hosts) {
        writeFileSync(join(h.home, '..', 'fleet.key'), keyText, { mode: 0o600 });
        agents.set(h.name, await dc.startAgent(h, agentArgs(h)));
      }
      dc.startServer(h1);
      await waitUntil(async () => (await dc.cli(h1, ['pool', 'list', '--json'])).code === 0 || undefined, { deadlineMs: 60_000, everyMs: 250, what: 'the server on h1 to answer' });
      const built = await dc.cli(h1, ['image', 'build', '--name', 'default', '--hooks', TEST_HOOKS], { timeoutMs: 1_800_000 });
      assert.equal(built.code, 0, built.stderr);
      assert.equal((await dc.cli(h1, ['network', 'create', 'fleet', '--cidr', '10.78.0.0/24'])).code, 0);
      const spec = (placement: Record<string, unknown>): string => {
        const file = join(root, `desk-${randomBytes(3).toString('hex')}.json`);
        writeFileSync(file, JSON.stringify({ name: 'desk', image: 'default', datastore: 'main', network: 'fleet', size: { max: 3 }, naming: { pattern: 'desk-{n}' }, disks: { disposable: '64M', swap: '16M' }, memory: '384M', placement }));
        return file;
      };

      // bad input, refused before anything is made
      const unknown = await dc.cli(h1, ['pool', 'create', '-f', spec({ hosts: ['h1', 'h9'] })]);
      assert.notEqual(unknown.code, 0);
      assert.match(unknown.stderr, /VMFORK_HOST_NOT_FOUND/);
      assert.match(unknown.stderr, /h9/);
      assert.equal((await dc.cli(h1, ['pool', 'show', 'desk'])).code, 1, 'no pool was made');

      const created = await dc.cli(h1, ['pool', 'create', '-f', spec({ hosts: ['h1', 'h2', 'h3'], strategy: 'spread' }), '--wait'], { timeoutMs: LONG_MS });
      assert.equal(created.code, 0, created.stderr + created.stdout);
      const pool = await json<PoolJson>(dc, h1, ['pool', 'show', 'desk']);
      assert.equal(pool.state, 'ready');
      assert.deepEqual(pool.hosts, { h1: 1, h2: 1, h3: 1 }, 'spread: one child per host');
      assert.deepEqual(pool.vms.map((v) => v.state), ['running', 'running', 'running']);

      // phase 1 once: one replica made, the two others copies of it
      const map = (await json<ReplicaJson[]>(dc, h1, ['replica', 'list'])).filter((r) => r.state === 'ready');
      const made = map.filter((r) => !r.copiedFrom);
      assert.equal(made.length, 1, `one replica made by phase 1: ${JSON.stringify(map)}`);
      assert.deepEqual(map.filter((r) => r.copiedFrom).map((r) => [r.hostId, r.copiedFrom?.replica]).sort(), [...dc.hosts.map((h) => h.name).filter((h) => h !== made[0]?.hostId).map((h) => [h, made[0]?.id])].sort());

      // distinct machines across the three hosts, each collected on its own host
      const verified = await dc.cli(h1, ['verify', ...pool.vms.map((v) => v.name), '--json'], { timeoutMs: 300_000 });
      const report = JSON.parse(verified.stdout) as { ok: boolean; children: { name: string; reachable: boolean | null }[]; problems: unknown[]; collisions: unknown[] };
      assert.equal(verified.code, 0, `verify: ${JSON.stringify(report.problems)} ${JSON.stringify(report.collisions)}`);
      assert.equal(report.children.length, 3);
      assert.ok(report.children.every((c) => c.reachable === true));

      // h2's agent killed: h2 is lost, its child unknown; the server queues a converge that replaces it on another
      // host under a new name and address (the old one may still run, cut off), and fences the old record
      const onH2 = pool.vms.find((v) => v.host === 'h2')?.name as string;
      const h2Agent = agents.get('h2') as RunningAgent;
      h2Agent.child.kill('SIGKILL');
      await h2Agent.exited;
      const rebuilt = await waitUntil(
        async () => {
          const p = await json<PoolJson>(dc, h1, ['pool', 'show', 'desk']);
          const running = p.vms.filter((v) => v.state === 'running');
          return p.state === 'ready' && running.length === 3 && running.every((v) => v.host !== 'h2') ? p : undefined;
        },
        { deadlineMs: LONG_MS, everyMs: 500, what: "the pool to rebuild h2's child on the other hosts" },
      );
      assert.deepEqual(where(rebuilt.vms.find((v) => v.name === onH2)), { name: onH2, state: 'unknown', host: 'h2' }, 'the lost child is kept, fenced, until its host is back');
      const replacement = rebuilt.vms.find((v) => !pool.vms.some((o) => o.name === v.name))?.name as string;
      assert.ok(replacement && replacement !== onH2, `a new name for the replacement: ${JSON.stringify(rebuilt.vms)}`);
      const again = await dc.cli(h1, ['verify', ...rebuilt.vms.filter((v) => v.state === 'running').map((v) => v.name), '--json'], { timeoutMs: 300_000 });
      assert.equal(again.code, 0, again.stdout);

      // h2's agent back: the child replaced meanwhile is destroyed there, not revived (its QEMU had run on)
      const back = await dc.startAgent(h2, agentArgs(h2));
      await waitUntil(async () => ((await json<PoolJson>(dc, h1, ['pool', 'show', 'desk'])).vms.some((v) => v.name === onH2) ? undefined : true), {
        deadlineMs: 120_000,
        everyMs: 500,
        what: `h2's agent to destroy ${onH2}, replaced while h2 was lost`,
      });
      assert.match(back.output(), new RegExp(`VM ${onH2} was unknown while the host was lost: destroyed`));
      assert.deepEqual((await json<PoolJson>(dc, h1, ['pool', 'show', 'desk'])).hosts, Object.fromEntries(Object.entries(rebuilt.hosts).filter(([h]) => h !== 'h2')));

      // a child on another host than the server's, claimed then released: refreshed there by its agent (same name
      // and host, a new machine), a ready spare again
      let other: { vm: string; host?: string } | undefined;
      for (let i = 0; i < 3 && !other; i++) {
        const c = await json<{ vm: string }>(dc, h1, ['pool', 'claim', 'desk', '--json']);
        const host = (await json<PoolJson>(dc, h1, ['pool', 'show', 'desk'])).vms.find((v) => v.name === c.vm)?.host;
        if (host !== 'h1') other = { vm: c.vm, host };
      }
      assert.ok(other, 'a claimed child on h3');
      const machineId = async (vm: string): Promise<string> => {
        const r = await dc.cli(h1, ['vm', 'exec', vm, '--', 'cat', '/etc/machine-id'], { timeoutMs: 300_000 });
        assert.equal(r.code, 0, r.stderr);
        return r.stdout.trim();
      };
      const before = await machineId(other.vm);
      const released = await dc.cli(h1, ['vm', 'release', other.vm, '--wait'], { timeoutMs: LONG_MS });
      assert.equal(released.code, 0, released.stderr + released.stdout);
      const after = await json<PoolJson>(dc, h1, ['pool', 'show', 'desk']);
      assert.deepEqual(where(after.vms.find((v) => v.name === other?.vm)), { name: other.vm, state: 'running', host: other.host }, 'refreshed where it was');
      const now = await machineId(other.vm);
      assert.ok(/^[0-9a-f]{32}$/.test(now) && now !== before, `a new machine after the refresh: ${before} → ${now}`);
      // powered off through the server (REST): a non-persistent pool's child is destroyed on its host by its agent
      // (the patent's reset at power-off), and the pool's converge makes it again by the placement rule
      const namesBefore = (await json<PoolJson>(dc, h1, ['pool', 'show', 'desk'])).vms.map((v) => v.name);
      const off = await dc.cli(h1, ['vm', 'power-off', other.vm, '--wait'], { timeoutMs: LONG_MS });
      assert.equal(off.code, 0, off.stderr + off.stdout);
      // (under the pool's first free name, which may be another one: h2's fenced child freed its name)
      const offName = other.vm;
      const remade = await waitUntil(async () => {
        const p = await json<PoolJson>(dc, h1, ['pool', 'show', 'desk']);
        return p.state === 'ready' && p.vms.length === 3 && p.vms.every((v) => v.state === 'running') ? p : undefined;
      }, { deadlineMs: LONG_MS, everyMs: 500, what: `a child made again after ${offName}'s power-off` });
      const fresh = remade.vms.find((v) => !namesBefore.includes(v.name));
      if (!fresh) assert.notEqual(await machineId(offName), now, `${offName} is a new machine, or another name took its place: ${JSON.stringify(remade.vms)}`);

      const removed = await dc.cli(h1, ['pool', 'rm', 'desk', '--wait'], { timeoutMs: LONG_MS });
      assert.equal(removed.code, 0, removed.stderr + removed.stdout);
      const vms = await json<{ name: string }[]>(dc, h1, ['vm', 'list']);
      assert.deepEqual(vms.filter((v) => v.name.startsWith('desk-')), [], 'no child left on any host');
    } finally {
      problems = await dc.close();
    }
    assert.deepEqual(problems, []);
  }),
);
