import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { putSetting } from '../../src/store/index.js';
import { openStore } from '../../src/store/index.js';
import { run, waitUntil } from '../../src/util/index.js';
import { freshPostgresDatabase, testDialect } from '../helpers/store.js';
import { withTempDir } from '../helpers/temp-dir.js';

// Host agents share a PostgreSQL store: these run in the PostgreSQL pass of the unit tests (scripts/test-pg.sh),
// each agent a real `vmfork host-agent` process on a fresh database of the test server.
const skip = testDialect() === 'postgres' ? false : 'host agents need PostgreSQL: run by scripts/test-pg.sh';
const MAIN = new URL('../../src/cli/main.js', import.meta.url).pathname;

interface Agent {
  child: ChildProcess;
  exited: Promise<number | null>;
  output: () => string;
}

function cli(home: string, db: string, args: string[]) {
  return run(process.execPath, [MAIN, '--home', home, '--db', db, ...args], { allowFailure: true, timeoutMs: 60_000 });
}

/** `vmfork host-agent` for `host`, resolved once it says it is up (an exit before that fails at once). */
async function agent(dir: string, db: string, host: string, datastore = join(dir, `${host}-store`)): Promise<Agent> {
  const home = join(dir, `${host}-home`);
  const args = ['--home', home, '--db', db, 'host-agent', '--host', host, '--listen', '127.0.0.1:0', '--datastore', `main=${datastore}`, '--heartbeat-seconds', '0.2', '--lost-after-seconds', '2'];
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', () => /host \S+ up \(generation \d+\)/.test(out) && resolve());
    exited.then((code) => reject(new Error(`host-agent exited (${code}) before it was up: ${out}`)), reject);
  });
  return { child, exited, output: () => out };
}

interface HostJson {
  id: string;
  state: string;
  agent: { generation: number; pid: number; listen: string; heartbeatAt: string; cpus: number; memoryBytes: number; accel: string; accelWhy: string; qemuVersion: string; protocol: number } | null;
  datastores: { name: string; path: string; freeBytes: number }[];
}

async function hosts(dir: string, db: string): Promise<HostJson[]> {
  const r = await cli(join(dir, 'viewer'), db, ['host', 'list', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as HostJson[];
}

const hostOf = async (dir: string, db: string, id: string): Promise<HostJson | undefined> => (await hosts(dir, db)).find((h) => h.id === id);

test('a host agent registers its host with what it is (CPUs, RAM, accelerator and why, QEMU, datastores), heartbeats, and goes down on SIGTERM', { skip },
  withTempDir('vmfork-agent-', async (dir) => {
    const db = await freshPostgresDatabase(process.env.VMFORK_TEST_PG_URL ?? '');
    const a = await agent(dir, db, 'h1');
    try {
      const h = await hostOf(dir, db, 'h1');
      assert.equal(h?.state, 'up');
      assert.equal(h?.agent?.generation, 1);
      assert.equal(h?.agent?.pid, a.child.pid);
      assert.equal(h?.agent?.protocol, 1);
      assert.ok((h?.agent?.cpus ?? 0) >= 1 && (h?.agent?.memoryBytes ?? 0) > 0);
      assert.match(h?.agent?.accel ?? '', /^(kvm|tcg)$/);
      assert.ok((h?.agent?.accelWhy ?? '').length > 10, 'the accelerator comes with its reason');
      assert.match(h?.agent?.qemuVersion ?? '', /QEMU emulator version/);
      assert.deepEqual(h?.datastores.map((d) => [d.name, d.path]), [['main', join(dir, 'h1-store')]]);
      assert.ok((h?.datastores[0]?.freeBytes ?? 0) > 0);
      assert.deepEqual(JSON.parse(readFileSync(join(dir, 'h1-store', '.vmfork-datastore'), 'utf8')), { host: 'h1', datastore: 'main' });
      const status = await (await fetch(`${h?.agent?.listen ?? ''}/v1/agent`)).json();
      assert.deepEqual(status, { host: 'h1', protocol: 1, generation: 1, pid: a.child.pid });
      // heartbeats move on (the database's clock)
      const first = h?.agent?.heartbeatAt ?? '';
      await waitUntil(async () => ((await hostOf(dir, db, 'h1'))?.agent?.heartbeatAt ?? '') > first || undefined, { deadlineMs: 30_000, everyMs: 100, what: 'a later heartbeat' });
      a.child.kill('SIGTERM');
      assert.equal(await a.exited, 0, a.output());
      assert.equal((await hostOf(dir, db, 'h1'))?.state, 'down');
    } finally {
      a.child.kill('SIGKILL');
    }
  }));

test('one agent per host: a second is refused naming the first; kill -9 of the first frees the name, the next takes a new generation and the killed one was found lost meanwhile', { skip },
  withTempDir('vmfork-agent-', async (dir) => {
    const db = await freshPostgresDatabase(process.env.VMFORK_TEST_PG_URL ?? '');
    const a = await agent(dir, db, 'h1');
    const watcher = await agent(dir, db, 'h2');
    let again: Agent | undefined;
    try {
      const second = await cli(join(dir, 'h1-other'), db, ['host-agent', '--host', 'h1', '--listen', '127.0.0.1:0', '--datastore', `main=${join(dir, 'h1-other-store')}`]);
      assert.notEqual(second.code, 0);
      assert.match(second.stderr, /VMFORK_HOST_TAKEN/);
      assert.ok(second.stderr.includes(`pid ${a.child.pid}`), second.stderr);
      assert.ok(!existsSync(join(dir, 'h1-other-store')), 'the refused agent made no datastore');

      a.child.kill('SIGKILL');
      assert.equal(await a.exited, null);
      // h2's heartbeats sweep: h1 has sent none for its own 2 s (by the database's clock)
      await waitUntil(async () => ((await hostOf(dir, db, 'h1'))?.state === 'lost' ? true : undefined), { deadlineMs: 30_000, everyMs: 100, what: 'h1 found lost' });
      again = await agent(dir, db, 'h1');
      const h = await hostOf(dir, db, 'h1');
      assert.equal(h?.state, 'up');
      assert.equal(h?.agent?.generation, 2, 'a new life, fenced from the old one');
      assert.equal((await hostOf(dir, db, 'h2'))?.state, 'up');
    } finally {
      for (const p of [a, watcher, again]) p?.child.kill('SIGKILL');
    }
  }));

test('refused before anything is written: a datastore of another host, another protocol, no PostgreSQL, bad arguments', { skip },
  withTempDir('vmfork-agent-', async (dir) => {
    const db = await freshPostgresDatabase(process.env.VMFORK_TEST_PG_URL ?? '');
    const a = await agent(dir, db, 'h1');
    try {
      // the same directory for a second host: its marker names h1
      const taken = await cli(join(dir, 'h3-home'), db, ['host-agent', '--host', 'h3', '--listen', '127.0.0.1:0', '--datastore', `main=${join(dir, 'h1-store')}`]);
      assert.notEqual(taken.code, 0);
      assert.match(taken.stderr, /VMFORK_DATASTORE_TAKEN/);
      assert.match(taken.stderr, /datastore "main" of host "h1"/);
      assert.equal(await hostOf(dir, db, 'h3'), undefined, 'no host h3 was recorded');

      // the fleet speaks another protocol
      const store = await openStore(db);
      await putSetting(store, 'host_agent_protocol', '7');
      await store.destroy();
      const other = await cli(join(dir, 'h4-home'), db, ['host-agent', '--host', 'h4', '--listen', '127.0.0.1:0', '--datastore', `main=${join(dir, 'h4-store')}`]);
      assert.notEqual(other.code, 0);
      assert.match(other.stderr, /VMFORK_HOST_PROTOCOL/);
      assert.match(other.stderr, /speaks protocol 1; the fleet on this database speaks protocol 7/);
      assert.equal(await hostOf(dir, db, 'h4'), undefined);
      assert.ok(!existsSync(join(dir, 'h4-store')));

      // a SQLite store (no --db): host agents share PostgreSQL
      mkdirSync(join(dir, 'h5-home'));
      const lite = await run(process.execPath, [MAIN, '--home', join(dir, 'h5-home'), 'host-agent', '--host', 'h5', '--listen', '127.0.0.1:0', '--datastore', `main=${join(dir, 'h5-store')}`], { allowFailure: true, timeoutMs: 60_000 });
      assert.match(lite.stderr, /VMFORK_INVALID_ARGUMENT.*PostgreSQL/);

      for (const [args, field] of [
        [['--listen', '127.0.0.1:0', '--datastore', 'main=/x'], '--host'],
        [['--host', 'Bad_Name', '--listen', '127.0.0.1:0', '--datastore', 'main=/x'], 'RFC 1123'],
        [['--host', 'h6', '--listen', 'nowhere', '--datastore', 'main=/x'], '--listen'],
        [['--host', 'h6', '--listen', '127.0.0.1:0', '--datastore', 'main=relative'], 'NAME=/absolute/path'],
        [['--host', 'h6', '--listen', '127.0.0.1:0', '--datastore', 'a=/x', '--datastore', 'a=/y'], 'given twice'],
        [['--host', 'h6', '--listen', '127.0.0.1:0', '--datastore', 'a=/x', '--heartbeat-seconds', '2', '--lost-after-seconds', '3'], 'at least 3 heartbeats'],
      ] as const) {
        const r = await cli(join(dir, 'h6-home'), db, ['host-agent', ...args]);
        assert.notEqual(r.code, 0, args.join(' '));
        assert.ok(r.stderr.includes(field), `${args.join(' ')}: ${r.stderr}`);
      }
      assert.equal(await hostOf(dir, db, 'h6'), undefined);
      assert.equal((await hostOf(dir, db, 'h1'))?.state, 'up', 'the running agent was not disturbed');
    } finally {
      a.child.kill('SIGKILL');
    }
  }));

test('with no agent left, a server on the store finds the dead one lost', { skip },
  withTempDir('vmfork-agent-', async (dir) => {
    const db = await freshPostgresDatabase(process.env.VMFORK_TEST_PG_URL ?? '');
    const a = await agent(dir, db, 'h1');
    const server = spawn(process.execPath, [MAIN, '--home', join(dir, 'server'), '--db', db, 'serve', '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const serverExited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
    try {
      let out = '';
      await new Promise<void>((resolve, reject) => {
        server.stdout.on('data', (b: Buffer) => ((out += b.toString()), /serving http/.test(out) && resolve()));
        serverExited.then((code) => reject(new Error(`serve exited (${code}): ${out}`)), reject);
      });
      assert.match(out, /store: PostgreSQL postgres:\/\//);
      a.child.kill('SIGKILL');
      assert.equal(await a.exited, null);
      await waitUntil(async () => ((await hostOf(dir, db, 'h1'))?.state === 'lost' ? true : undefined), { deadlineMs: 60_000, everyMs: 200, what: 'h1 found lost by the server' });
      server.kill('SIGTERM');
      assert.equal(await serverExited, 0);
    } finally {
      a.child.kill('SIGKILL');
      server.kill('SIGKILL');
    }
  }));
