import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../../src/api/index.js';
import { homeLayout } from '../../src/config/index.js';
import { VmforkError } from '../../src/errors.js';
import { startTask } from '../../src/task/index.js';
import { openStore } from '../../src/store/index.js';
import { createLogger } from '../../src/util/index.js';
import type { VmDeps } from '../../src/vm/index.js';
import { addImage, addVm } from '../api/fixture.js';
import { ScriptedProvision } from '../api/scripted-provision.js';
import { withTempDir } from '../helpers/temp-dir.js';

const MAIN = new URL('../../src/cli/main.js', import.meta.url).pathname;

/** Runs the CLI as a user would (its own process), against `url`. */
function cli(home: string, url: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, '--home', home, ...args], { env: { ...process.env, VMFORK_URL: url } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function withServer(dir: string, fn: (s: RunningServer, deps: VmDeps) => Promise<void>): Promise<void> {
  const home = homeLayout(dir, {});
  const db = await openStore(home.db);
  const deps: VmDeps = { db, home, log: createLogger(undefined) };
  const server = await startServer(deps, { listen: '127.0.0.1:0', provision: new ScriptedProvision(deps) });
  try {
    await fn(server, deps);
  } finally {
    await server.close();
    await db.destroy();
  }
}

/** A loopback port nothing listens on (taken, then released). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as { port: number };
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

test('no server: a clear VMFORK_SERVER_UNAVAILABLE, in words or JSON, and a non-zero exit', withTempDir('vmfork-cli-', async (dir) => {
  const url = `http://127.0.0.1:${await closedPort()}`;
  const noToken = await cli(dir, url, 'pool', 'list');
  assert.equal(noToken.code, 1);
  assert.match(noToken.stderr, /^error VMFORK_SERVER_UNAVAILABLE: Cannot reach the vmfork server: no API token at .*api-token.*vmfork serve/);
  writeFileSync(join(dir, 'api-token'), 'x'.repeat(43), { mode: 0o600 });
  const down = await cli(dir, url, 'task', 'list', '--json');
  assert.equal(down.code, 1);
  const body = JSON.parse(down.stdout) as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'VMFORK_SERVER_UNAVAILABLE');
  assert.match(body.error.message, new RegExp(`^Cannot reach the vmfork server: ${url} \\(ECONNREFUSED\\): start it with "vmfork serve"`));
}));

test('pool create / list / show / resize / rm, vm power-on, replica list and task list/watch through a running server', withTempDir('vmfork-cli-', async (dir) => {
  await withServer(dir, async (server, deps) => {
    const spec = join(dir, 'pool.yaml');
    writeFileSync(spec, 'name: desk\nimage: default\nsize: { max: 3, min: 4 }\ndisks: { disposable: 64M }\n');
    const bad = await cli(dir, server.url, 'pool', 'create', '-f', spec);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error VMFORK_INVALID_ARGUMENT: Invalid argument: pool spec: size\.max: must be ≥ size\.min \(4\)/);
    writeFileSync(spec, 'name: desk\nimage: default\nsize: { max: 3 }\ndisks: { disposable: 64M }\n');
    assert.match((await cli(dir, server.url, 'pool', 'create', '-f', spec)).stderr, /VMFORK_IMAGE_NOT_FOUND.*pool spec: image/);
    await addImage(deps, 'default');

    const waited = await cli(dir, server.url, 'pool', 'create', '-f', spec, '--wait', '--json');
    assert.equal(waited.code, 0, waited.stderr);
    const task = JSON.parse(waited.stdout) as { id: string; state: string; children: Record<string, unknown> };
    assert.equal(task.state, 'succeeded');
    assert.deepEqual(Object.keys(task.children), ['desk-1', 'desk-2', 'desk-3']);

    const watch = await cli(dir, server.url, 'task', 'watch', task.id);
    assert.equal(watch.code, 0, watch.stderr);
    assert.match(watch.stdout, /step +children \(50%\)/);
    assert.match(watch.stdout, /child +desk-3: running \(100%\)/);
    assert.match(watch.stdout, /state +succeeded/);

    const list = await cli(dir, server.url, 'pool', 'list');
    assert.match(list.stdout, /^NAME +STATE +IMAGE/);
    assert.match(list.stdout, /desk +provisioning +default +up-front +no +3 +3 running/);
    assert.equal(JSON.parse((await cli(dir, server.url, 'pool', 'show', 'desk', '--json')).stdout).spec.name, 'desk');
    assert.match((await cli(dir, server.url, 'replica', 'list')).stdout, /r-1 +ready +default@v1/);

    const resized = await cli(dir, server.url, 'pool', 'resize', 'desk', '--max', '4');
    assert.match(resized.stdout, /^pool desk: task [0-9a-f-]{36} \(follow it: vmfork task watch/);
    assert.equal((await cli(dir, server.url, 'pool', 'resize', 'desk', '--max', 'x')).code, 1);

    await addVm(deps, 'desk-1');
    const on = await cli(dir, server.url, 'vm', 'power-on', 'desk-1', '--wait');
    assert.equal(on.code, 0, on.stderr);
    assert.match(on.stdout, /desk-1 power-on: succeeded/);
    assert.equal((await cli(dir, server.url, 'vm', 'power-off', 'ghost')).code, 1);

    assert.equal((await cli(dir, server.url, 'pool', 'rm', 'desk', '--wait')).code, 0);
    const tasks = JSON.parse((await cli(dir, server.url, 'task', 'list', '--json')).stdout) as { kind: string }[];
    assert.deepEqual(tasks.map((t) => t.kind).sort(), ['pool-create', 'pool-remove', 'pool-resize', 'vm-power-on']);

    const failing = await startTask(deps, { kind: 'pool-create', target: 'broken' }, () => Promise.reject(new VmforkError('VMFORK_AGENT_TIMEOUT', 'common script 10-site.sh ran over 120 s')));
    const watchedFail = await cli(dir, server.url, 'task', 'watch', failing);
    assert.equal(watchedFail.code, 1);
    assert.match(watchedFail.stderr, /error VMFORK_AGENT_TIMEOUT: The guest agent did not answer in time: common script 10-site.sh ran over 120 s/);
    assert.match((await cli(dir, server.url, 'task', 'show', 'nope')).stderr, /VMFORK_TASK_NOT_FOUND/);
  });
}));
