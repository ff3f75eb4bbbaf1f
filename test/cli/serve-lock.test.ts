import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { acquireServerLock, lockNameFor } from '../../src/api/index.js';
import { isVmforkError } from '../../src/errors.js';
import { run } from '../../src/util/index.js';
import { withTempDir } from '../helpers/temp-dir.js';

const MAIN = new URL('../../src/cli/main.js', import.meta.url).pathname;

interface Serving {
  child: ChildProcess;
  url: string;
  exited: Promise<number | null>;
  output: () => string;
}

/** `vmfork serve` on `home`, resolved once its banner says where it listens (an exit before that fails at once). */
async function serve(home: string): Promise<Serving> {
  const child = spawn(process.execPath, [MAIN, '--home', home, 'serve', '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', () => {
      const m = /serving (http:\/\/\S+)\n/.exec(out);
      if (m) resolve(m[1] as string);
    });
    exited.then((code) => reject(new Error(`serve exited (${code}) before it was serving: ${out}`)), reject);
  });
  return { child, url, exited, output: () => out };
}

test('one server per data dir: a second serve is refused with the first one\'s pid and URL; after kill -9 of the first a new one starts; other commands still work', withTempDir('vmfork-serve-lock-', async (dir) => {
  const home = join(dir, 'home');
  mkdirSync(home, { mode: 0o755 });
  await run('chmod', ['0755', home]);
  const first = await serve(home);
  let next: Serving | undefined;
  try {
    assert.equal(statSync(home).mode & 0o777, 0o700, 'the data dir was tightened');
    assert.match(readFileSync(join(home, 'logs', 'vmfork.log'), 'utf8'), /"was":"755".*data dir was open to group or other: tightened to 0700/);

    const second = await run(process.execPath, [MAIN, '--home', home, 'serve', '--listen', '127.0.0.1:0'], { allowFailure: true, timeoutMs: 60_000 });
    assert.notEqual(second.code, 0, 'the second server exits non-zero');
    assert.match(second.stderr, /VMFORK_SERVER_RUNNING/);
    assert.ok(second.stderr.includes(`pid ${first.child.pid}`) && second.stderr.includes(first.url), second.stderr);

    // a command that acts on the data dir directly still works while the server holds the lock
    const list = await run(process.execPath, [MAIN, '--home', home, 'vm', 'list', '--json'], { allowFailure: true, timeoutMs: 60_000 });
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(JSON.parse(list.stdout), []);

    // kill -9: no handler runs, the kernel frees the lock with the process
    first.child.kill('SIGKILL');
    assert.equal(await first.exited, null);
    next = await serve(home);
    assert.equal((await fetch(`${next.url}/healthz`)).status, 200);
  } finally {
    first.child.kill('SIGKILL');
    next?.child.kill('SIGTERM');
  }
  assert.equal(await next.exited, 0, next.output());
}));

test('acquireServerLock in one process: the holder answers with its pid and (once set) its URL; released, the lock is free again', withTempDir('vmfork-lock-', async (dir) => {
  const lock = await acquireServerLock(dir);
  const refusal = async (url: string | null): Promise<void> => {
    await assert.rejects(acquireServerLock(dir), (err: unknown) => {
      assert.ok(isVmforkError(err) && err.code === 'VMFORK_SERVER_RUNNING', String(err));
      assert.deepEqual(err.details, { pid: process.pid, url, home: dir });
      return true;
    });
  };
  try {
    await refusal(null);
    lock.setUrl('http://127.0.0.1:1234');
    await refusal('http://127.0.0.1:1234');
  } finally {
    await lock.release();
  }
  const again = await acquireServerLock(dir);
  await again.release();
  assert.equal(statSync(join(dir, 'run', 'server-lock.key')).mode & 0o777, 0o600, 'the key that names the lock is private');
}));

test('a squatter on the lock\'s name (anyone may bind an abstract socket) cannot pose as the server: refused as squatted, no pid believed', withTempDir('vmfork-squat-', async (dir) => {
  await (await acquireServerLock(dir)).release();
  const name = await lockNameFor(dir, readFileSync(join(dir, 'run', 'server-lock.key'), 'utf8').trim());
  const squatter = createServer((c) => {
    c.on('error', () => undefined);
    c.end(`${JSON.stringify({ pid: 1, url: 'http://evil.example' })}\n`, () => c.destroy());
  });
  await new Promise<void>((resolve, reject) => squatter.once('error', reject).listen(`\0${name}`, resolve));
  try {
    await assert.rejects(acquireServerLock(dir), (err: unknown) => {
      assert.ok(isVmforkError(err) && err.code === 'VMFORK_SERVER_RUNNING', String(err));
      assert.deepEqual(err.details, { pid: null, url: null, home: dir, squatted: true });
      assert.match(err.message, /cannot prove it serves this data dir/);
      return true;
    });
  } finally {
    await new Promise<void>((resolve) => squatter.close(() => resolve()));
  }
}));
