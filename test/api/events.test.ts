import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { actorFor } from '../../src/host/index.js';
import { DEFAULT_NETWORK } from '../../src/network/index.js';
import { parsePoolSpec } from '../../src/pool/index.js';
import { deletePoolRow, insertLease, insertNetwork, insertPool, insertTask, insertTemplate, insertVm, LOCAL_HOST_ID, updateVm } from '../../src/store/index.js';
import type { TaskState } from '../../src/state/index.js';
import { waitUntil } from '../../src/util/index.js';
import { addImage, apiFixture, type ApiFixture } from './fixture.js';
import { parseEventStream, type SseEvent } from './openapi-check.js';

const SPEC = { name: 'desk', image: 'default', size: { max: 2 }, naming: { pattern: 'desk-{n}' }, disks: { disposable: '64M' } };

/** Reads a text/event-stream answer one event at a time (comment lines skipped), keeping the whole text. */
class EventReader {
  text = '';
  private buffer = '';
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();

  constructor(res: Response) {
    this.reader = (res.body as ReadableStream<Uint8Array>).getReader();
  }

  /** The next event, or undefined once the stream ended. */
  async next(): Promise<SseEvent | undefined> {
    for (;;) {
      const end = this.buffer.indexOf('\n\n');
      if (end >= 0) {
        const block = this.buffer.slice(0, end + 2);
        this.buffer = this.buffer.slice(end + 2);
        const [event] = parseEventStream(block);
        if (event) return event;
        continue;
      }
      const chunk = await this.reader.read();
      if (chunk.done) return undefined;
      const s = this.decoder.decode(chunk.value, { stream: true });
      this.text += s;
      this.buffer += s;
    }
  }
}

/** A stream's whole text as the OpenAPI checker reads an answer. */
const streamed = (body: string): Parameters<ApiFixture['checker']['check']>[2] => ({
  statusCode: 200,
  headers: { 'content-type': 'text/event-stream; charset=utf-8' },
  body,
  json: () => {
    throw new Error('an event stream is not one JSON document');
  },
});

async function listening(f: ApiFixture): Promise<string> {
  await f.app.listen({ host: '127.0.0.1', port: 0 });
  return `http://127.0.0.1:${(f.app.server.address() as AddressInfo).port}`;
}

async function withFixture(options: { provision?: boolean | 'engine' }, fn: (f: ApiFixture) => Promise<void>): Promise<void> {
  const f = await apiFixture(options);
  try {
    await fn(f);
  } finally {
    await f.close();
  }
}

test('GET /v1/events: `pools` and `pool` at connect, each again within a second of its own change; the stream closes cleanly', () => withFixture({}, async (f) => {
  await addImage(f.deps, 'default');
  assert.equal((await f.call({ method: 'POST', url: '/v1/pools', payload: SPEC })).statusCode, 202);
  const url = await listening(f);
  // the server's side of the stream, to see it ended (not only the client's)
  let served: ServerResponse | undefined;
  f.app.server.on('request', (req: IncomingMessage, res: ServerResponse) => void (req.url?.startsWith('/v1/events') && (served = res)));
  const client = new AbortController();
  const res = await fetch(`${url}/v1/events?pool=desk`, { headers: { authorization: `Bearer ${f.token}` }, signal: client.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const events = new EventReader(res);
  const [pools, pool] = [await events.next(), await events.next()];
  assert.equal(pools?.event, 'pools');
  assert.deepEqual(JSON.parse(pools?.data ?? ''), (await f.call({ method: 'GET', url: '/v1/pools' })).json(), 'exactly what GET /v1/pools answers');
  assert.equal(pool?.event, 'pool');
  assert.deepEqual(JSON.parse(pool?.data ?? ''), (await f.call({ method: 'GET', url: '/v1/pools/desk' })).json(), 'exactly what GET /v1/pools/{name} answers');

  // a change only the detail shows (a child claimed): only `pool` comes again
  const desk = f.provision?.pools.get('desk');
  assert.ok(desk?.vms[0]);
  let t0 = Date.now();
  desk.vms[0] = { ...desk.vms[0], claimedBy: 'ada', claimedAt: new Date().toISOString() };
  const claimed = await events.next();
  assert.equal(claimed?.event, 'pool', 'the list did not change: no `pools` event');
  assert.equal(JSON.parse(claimed?.data ?? '').vms[0].claimedBy, 'ada');
  assert.ok(Date.now() - t0 < 2500, `the change came after ${Date.now() - t0} ms`);
  // a change both show (the pool's state): both come again, in order
  t0 = Date.now();
  desk.state = 'ready';
  const [p2, d2] = [await events.next(), await events.next()];
  assert.deepEqual([p2?.event, d2?.event], ['pools', 'pool']);
  assert.equal(JSON.parse(p2?.data ?? '')[0].state, 'ready');
  assert.ok(Date.now() - t0 < 2500, `the change came after ${Date.now() - t0} ms`);
  // every event is of its documented schema
  f.checker.check('GET', '/v1/events?pool=desk', streamed(events.text));

  // the client goes: the server ends its side at once (its loop and heartbeat stop), not at its next look
  assert.equal(served?.writableEnded, false);
  t0 = Date.now();
  client.abort();
  await waitUntil(() => served?.writableEnded, { deadlineMs: 5000, everyMs: 20, what: 'the server to end the stream' });
  assert.ok(Date.now() - t0 < 500, `ended after ${Date.now() - t0} ms`);
}));

test('GET /v1/events without ?pool= sends only `pools`; a logout ends the streams its session opened', () => withFixture({}, async (f) => {
  const url = await listening(f);
  const login = await fetch(`${url}/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: f.token }) });
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  const { csrf } = (await login.json()) as { csrf: string };
  const res = await fetch(`${url}/v1/events`, { headers: { cookie } });
  assert.equal(res.status, 200);
  const events = new EventReader(res);
  const first = await events.next();
  assert.equal(first?.event, 'pools');
  assert.deepEqual(JSON.parse(first?.data ?? ''), []);
  const out = await fetch(`${url}/v1/session`, { method: 'DELETE', headers: { cookie, 'x-vmfork-csrf': csrf, origin: url } });
  assert.equal(out.status, 204);
  const t0 = Date.now();
  assert.equal(await events.next(), undefined, 'the stream ended');
  assert.ok(Date.now() - t0 < 3000);
  assert.doesNotMatch(events.text, /event: pool\n/);
}));

test('GET /v1/events refuses before streaming: a bad query 400, an unknown pool 404, no token 401, no engine 501 (JSON answers)', async () => {
  await withFixture({ provision: 'engine' }, async (f) => {
    for (const [query, status] of [['?colour=blue', 400], ['?pool=Not_A_Name', 400], ['?pool=nope', 404]] as const) {
      const res = await f.call({ method: 'GET', url: `/v1/events${query}` });
      assert.equal(res.statusCode, status, `${query}: ${res.body}`);
    }
    assert.equal((await f.call({ method: 'GET', url: '/v1/pools/nope' })).json().error.code, 'VMFORK_POOL_NOT_FOUND');
    assert.equal((await f.call({ method: 'GET', url: '/v1/events', token: null })).statusCode, 401);
  });
  await withFixture({ provision: false }, async (f) => {
    const res = await f.call({ method: 'GET', url: '/v1/events' });
    assert.equal(res.statusCode, 501);
    assert.equal(res.json().error.code, 'VMFORK_NOT_SUPPORTED');
  });
});

test('the engine\'s views: a pool\'s last task (running first, else the next, else the newest), each child\'s address, claim, fork time and speed; a removed pool\'s `pool` event is its 404', () => withFixture({ provision: 'engine' }, async (f) => {
  const { db } = f.deps;
  await addImage(f.deps, 'default');
  const now = new Date().toISOString();
  await insertNetwork(db, { name: DEFAULT_NETWORK.name, cidr: DEFAULT_NETWORK.cidr, netns: 'vmfork-test-absent', bridge: 'br-test', gateway: '10.231.0.1', owner_id: 'test', state: 'ready', created_at: now, updated_at: now }, await actorFor('network-create'));
  await insertPool(db, { name: 'desk', host_id: LOCAL_HOST_ID, state: 'ready', spec_json: JSON.stringify(parsePoolSpec(SPEC)), replica_id: null, template_name: null, task_id: null, last_error: null, created_at: now, updated_at: now }, await actorFor('pool'));
  for (const [i, name] of ['desk-1', 'desk-2'].entries()) {
    await insertVm(db, { name, host_id: LOCAL_HOST_ID, image_name: 'default', state: i === 0 ? 'running' : 'registered', role: 'child', dir: `/nonexistent/${name}`, spec_json: '{}', last_error: null, created_at: now, updated_at: now, template_name: null, pool_name: 'desk' }, await actorFor('fork'));
    await insertLease(db, { network_name: DEFAULT_NETWORK.name, ip: `10.231.0.${i + 10}`, vm_name: name, mac: `52:54:00:00:00:0${i}`, tap: `tap${i}`, allocated_at: now });
  }
  const forkedAt = new Date(Date.now() + 1000).toISOString();
  // desk-1's fork found its template's boot_id in the guest (it resumed, never booted): 0 reboots; desk-2 has no report
  await insertTemplate(db, { name: 'rt-desk', image_name: 'default', state: 'ready', dir: '/nonexistent/rt-desk', spec_json: '{}', record_json: JSON.stringify({ bootId: 'B00T' }), replica_id: null, parent_name: null, last_error: null, created_at: now, updated_at: now }, await actorFor('template-create'));
  await updateVm(db, 'desk-1', { claim_state: 'claimed', claimed_by: 'ada', claimed_at: now, forked_at: forkedAt, ready_ms: 1234, template_name: 'rt-desk', facts_json: JSON.stringify({ bootId: 'b00t' }) });

  const summary = async (): Promise<unknown> => ((await f.call({ method: 'GET', url: '/v1/pools' })).json() as { lastTask: unknown }[])[0]?.lastTask;
  assert.equal(await summary(), null, 'no task yet');
  const task = async (id: string, state: TaskState, at: number): Promise<void> => {
    const t = new Date(Date.now() + at).toISOString();
    await insertTask(db, { id, kind: 'pool-converge', target: 'desk', state, step: state === 'succeeded' ? 'done' : 'children', percent: state === 'succeeded' ? 100 : 40, progress_json: '{}', input_json: '{}', result_json: null, last_error: null, host_id: LOCAL_HOST_ID, queue: 'desk', lock: 'pool', created_at: t, updated_at: t }, await actorFor('task'));
  };
  await task('t-old', 'succeeded', 0);
  await task('t-done', 'succeeded', 10);
  assert.deepEqual(await summary(), { id: 't-done', kind: 'pool-converge', state: 'succeeded', percent: 100, step: 'done' }, 'the newest that ended');
  await task('t-waiting', 'queued', 20);
  assert.equal(((await summary()) as { id: string }).id, 't-waiting', 'the next one waiting');
  await task('t-running', 'running', 30);
  await task('t-later', 'queued', 40);
  assert.deepEqual(await summary(), { id: 't-running', kind: 'pool-converge', state: 'running', percent: 40, step: 'children' }, 'the one running, before any waiting');

  const detail = (await f.call({ method: 'GET', url: '/v1/pools/desk' })).json() as { lastTask: { id: string }; vms: Record<string, unknown>[] };
  assert.equal(detail.lastTask.id, 't-running');
  assert.deepEqual(detail.vms, [
    { name: 'desk-1', state: 'running', host: LOCAL_HOST_ID, ip: '10.231.0.10', claimedBy: 'ada', claimedAt: now, secondsToReady: 1.234, reboots: 0, createdAt: forkedAt },
    { name: 'desk-2', state: 'registered', host: LOCAL_HOST_ID, ip: '10.231.0.11', claimedBy: null, claimedAt: null, secondsToReady: null, reboots: null, createdAt: now },
  ]);

  // the stream over the same engine; the pool goes: its `pool` event says so as GET /v1/pools/{name} would
  const url = await listening(f);
  const client = new AbortController();
  const res = await fetch(`${url}/v1/events?pool=desk`, { headers: { authorization: `Bearer ${f.token}` }, signal: client.signal });
  const events = new EventReader(res);
  assert.deepEqual([(await events.next())?.event, JSON.parse((await events.next())?.data ?? '').vms.length], ['pools', 2]);
  await db.deleteFrom('ip_leases').execute();
  await db.deleteFrom('vms').execute();
  await deletePoolRow(db, 'desk');
  const [pools, gone] = [await events.next(), await events.next()];
  assert.deepEqual(JSON.parse(pools?.data ?? ''), []);
  assert.equal(gone?.event, 'pool');
  assert.equal(JSON.parse(gone?.data ?? '').error.code, 'VMFORK_POOL_NOT_FOUND');
  f.checker.check('GET', '/v1/events?pool=desk', streamed(events.text));
  client.abort();
}));
