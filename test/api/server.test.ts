import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseListen, startServer } from '../../src/api/index.js';
import { getTaskView, startTask, waitForTask } from '../../src/task/index.js';
import { insertTask, LOCAL_HOST_ID, openStore } from '../../src/store/index.js';
import { createLogger } from '../../src/util/index.js';
import type { VmDeps } from '../../src/vm/index.js';
import { deadActor } from '../helpers/actor.js';
import { withTempDir } from '../helpers/temp-dir.js';
import { parseEventStream } from './openapi-check.js';
import { ScriptedProvision } from './scripted-provision.js';
import { testHomeLayout } from '../helpers/store.js';

test('parseListen: HOST:PORT and [v6]:PORT; anything else is VMFORK_INVALID_ARGUMENT', () => {
  assert.deepEqual(parseListen('127.0.0.1:8470'), { host: '127.0.0.1', port: 8470 });
  assert.deepEqual(parseListen('[::1]:0'), { host: '::1', port: 0 });
  for (const bad of ['8470', 'localhost', ':80', '1.2.3.4:99999', 'a:b']) assert.throws(() => parseListen(bad), { code: 'VMFORK_INVALID_ARGUMENT' }, bad);
});

test('startServer: listens, resumes a dead server\'s task, streams a live task\'s events over HTTP until it ends, never logs the token', withTempDir('vmfork-serve-', async (dir) => {
  const home = await testHomeLayout(dir);
  const db = await openStore(home.db);
  const deps: VmDeps = { db, home, log: createLogger(home.logs, 'debug') };
  const provision = new ScriptedProvision(deps);
  const now = new Date().toISOString();
  await insertTask(db, { id: 't-left', kind: 'pool-create', target: 'desk', state: 'running', step: 'children', percent: 50, progress_json: '{}', input_json: '{"pool":"desk","children":["desk-1"]}', result_json: null, last_error: null, host_id: LOCAL_HOST_ID, created_at: now, updated_at: now }, await deadActor('task'));
  const server = await startServer(deps, { listen: '127.0.0.1:0', provision });
  try {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(server.tokenPath, join(dir, 'api-token'));
    assert.deepEqual(server.recovered.map((r) => `${r.id}:${r.action}`), ['t-left:resumed']);
    assert.equal((await waitForTask(deps, 't-left')).state, 'succeeded');
    const token = readFileSync(server.tokenPath, 'utf8').trim();
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${server.url}/v1/tasks`)).status, 401);

    let release!: () => void;
    provision.hold = new Promise<void>((resolve) => (release = resolve));
    const id = await startTask(deps, { kind: 'pool-create', target: 'live', input: { children: ['live-1', 'live-2'] } }, provision.runners['pool-create'] as never);
    const res = await fetch(`${server.url}/v1/tasks/${id}/events`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = '';
    // live: the runner is held, so the stream is open and has only delivered the events so far
    while (!text.includes('event: step')) text += decoder.decode((await reader.read()).value);
    assert.equal((await getTaskView(deps, id)).state, 'running');
    release();
    // the stream ends when the task does (the test runner's timeout bounds a stream that never would)
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) text += decoder.decode(chunk.value);
    assert.deepEqual(parseEventStream(text).map((e) => e.event), ['state', 'state', 'step', 'child', 'child', 'state']);
    assert.equal(JSON.parse(parseEventStream(text).at(-1)?.data ?? '{}').data.state, 'succeeded');
  } finally {
    await server.close();
    await db.destroy();
  }
  const logs = readdirSync(home.logs).map((f) => readFileSync(join(home.logs, f), 'utf8')).join('');
  assert.match(logs, /request completed/);
  assert.ok(!logs.includes(readFileSync(join(dir, 'api-token'), 'utf8').trim()), 'the token is in the log');
}));

test('closing the server does not wait for open event streams', withTempDir('vmfork-serve-', async (dir) => {
  const home = await testHomeLayout(dir);
  const db = await openStore(home.db);
  const deps: VmDeps = { db, home, log: createLogger(undefined) };
  const provision = new ScriptedProvision(deps);
  let release!: () => void;
  provision.hold = new Promise<void>((resolve) => (release = resolve));
  const server = await startServer(deps, { listen: '127.0.0.1:0', provision });
  let id: string | undefined;
  try {
    id = await startTask(deps, { kind: 'pool-create', target: 'held', input: { children: ['held-1'] } }, provision.runners['pool-create'] as never);
    const token = readFileSync(server.tokenPath, 'utf8').trim();
    const res = await fetch(`${server.url}/v1/tasks/${id}/events`, { headers: { authorization: `Bearer ${token}` } });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    // no clock: the task stays held (and its stream open) until after close, so a close that waited for open
    // streams would never resolve and the test's timeout would fail it
    await server.close();
    assert.equal((await getTaskView(deps, id)).state, 'running', 'close resolved only once the held task ended');
    // the close cut the stream: it ends (or errors) while its task is still held, so not because the task ended
    const readOrEnd = (): Promise<{ done: boolean }> => reader.read().catch(() => ({ done: true }));
    let chunk = await readOrEnd();
    while (!chunk.done) chunk = await readOrEnd();
    assert.equal((await getTaskView(deps, id)).state, 'running');
  } finally {
    release();
    await server.close().catch(() => undefined);
    if (id) await waitForTask(deps, id);
    await db.destroy();
  }
}));
