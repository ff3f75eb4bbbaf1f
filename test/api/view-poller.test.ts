import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ProvisionService } from '../../src/api/provision-service.js';
import { ViewPoller, type Views } from '../../src/api/view-poller.js';
import { VmforkError } from '../../src/errors.js';
import { createLogger, waitUntil } from '../../src/util/index.js';

/** A provision service that answers the two views and counts its reads. */
function countingProvision(): { service: ProvisionService; reads: { list: number; pool: Map<string, number> }; removed: Set<string> } {
  const reads = { list: 0, pool: new Map<string, number>() };
  const removed = new Set<string>();
  const service = {
    listPools: async () => {
      reads.list++;
      return { pools: [{ name: 'a' }, { name: 'b' }] };
    },
    getPool: async (name: string) => {
      reads.pool.set(name, (reads.pool.get(name) ?? 0) + 1);
      if (removed.has(name)) throw new VmforkError('VMFORK_POOL_NOT_FOUND', `no pool ${name}`);
      return { name, reads: reads.pool.get(name) };
    },
  } as unknown as ProvisionService;
  return { service, reads, removed };
}

interface Session {
  id: string;
}

test('one read per tick whatever the number of streams: the list once, each followed pool once, each session once', async () => {
  const { service, reads, removed } = countingProvision();
  const checked: string[] = [];
  const dead = new Set<string>();
  const poller = new ViewPoller<Session>({
    provision: () => service,
    sessionIsLive: async (s) => {
      checked.push(s.id);
      return !dead.has(s.id);
    },
    sessionKey: (s) => s.id,
    everyMs: 20,
    log: createLogger(undefined),
  });
  const got: { views: Views; live: boolean }[][] = [[], [], [], []];
  const stops = [
    poller.subscribe(undefined, { id: 's1' }, (views, live) => got[0]?.push({ views, live })),
    poller.subscribe('a', { id: 's1' }, (views, live) => got[1]?.push({ views, live })), // the same session, another request's copy
    poller.subscribe('a', { id: 's2' }, (views, live) => got[2]?.push({ views, live })),
    poller.subscribe('b', undefined, (views, live) => got[3]?.push({ views, live })), // a bearer token: no session
  ];
  await waitUntil(() => got.every((g) => g.length >= 3) || undefined, { deadlineMs: 10_000, everyMs: 5, what: 'three ticks at every stream' });
  const ticks = reads.list;
  assert.ok(ticks >= 3);
  assert.equal(reads.pool.get('a'), ticks, 'pool a read once a tick for its two streams');
  assert.equal(reads.pool.get('b'), ticks);
  assert.equal(checked.length, ticks * 2, 'two distinct sessions checked once a tick');
  assert.deepEqual(got[0]?.[0]?.views.map(([e]) => e), ['pools']);
  assert.deepEqual(got[1]?.[0]?.views.map(([e]) => e), ['pools', 'pool']);
  assert.equal(JSON.parse(got[3]?.[0]?.views[1]?.[1] ?? '{}').name, 'b');

  // a logout: s2's stream is told, the others are not; a removed pool's view is its error
  dead.add('s2');
  removed.add('b');
  const from = got.map((g) => g.length);
  await waitUntil(() => got.every((g, i) => g.length > (from[i] ?? 0)) || undefined, { deadlineMs: 10_000, everyMs: 5, what: 'the next tick' });
  assert.equal(got[2]?.at(-1)?.live, false);
  assert.equal(got[1]?.at(-1)?.live, true);
  assert.equal(got[3]?.at(-1)?.live, true, 'no session: always live');
  assert.equal(JSON.parse(got[3]?.at(-1)?.views[1]?.[1] ?? '{}').error.code, 'VMFORK_POOL_NOT_FOUND');

  // every stream gone: no more reads
  for (const stop of stops) stop();
  const after = reads.list;
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(reads.list <= after + 1, 'a tick already under way may finish, none starts');
  const settled = reads.list;
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(reads.list, settled);
});

test('a failed read is logged and the next tick tries again', async () => {
  let fail = true;
  let reads = 0;
  const service = {
    listPools: async () => {
      reads++;
      if (fail) throw new Error('the store is busy');
      return { pools: [] };
    },
  } as unknown as ProvisionService;
  const poller = new ViewPoller<Session>({ provision: () => service, sessionIsLive: async () => true, sessionKey: (s) => s.id, everyMs: 10, log: createLogger(undefined) });
  const got: Views[] = [];
  const stop = poller.subscribe(undefined, undefined, (views) => got.push(views));
  await waitUntil(() => reads >= 2 || undefined, { deadlineMs: 10_000, everyMs: 5, what: 'two failed reads' });
  assert.equal(got.length, 0);
  fail = false;
  await waitUntil(() => got.length > 0 || undefined, { deadlineMs: 10_000, everyMs: 5, what: 'views after the store answers' });
  stop();
});

test('streams leaving and coming back while a tick reads never start a second chain of ticks', async () => {
  let reads = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let release: (() => void) | undefined;
  const service = {
    listPools: async () => {
      reads++;
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise<void>((r) => (release = r));
      inFlight--;
      return { pools: [] };
    },
  } as unknown as ProvisionService;
  const poller = new ViewPoller<Session>({ provision: () => service, sessionIsLive: async () => true, sessionKey: (s) => s.id, everyMs: 5, log: createLogger(undefined) });
  const stop = poller.subscribe(undefined, undefined, () => undefined);
  await waitUntil(() => inFlight === 1 || undefined, { deadlineMs: 10_000, everyMs: 2, what: 'a tick reading' });
  stop(); // the last stream leaves mid-read, another comes at once
  const again = poller.subscribe(undefined, undefined, () => undefined);
  for (let i = 0; i < 5; i++) {
    const before = reads;
    release?.();
    await waitUntil(() => reads > before || undefined, { deadlineMs: 10_000, everyMs: 2, what: 'the next tick' });
  }
  assert.equal(maxInFlight, 1, 'one reading at a time');
  again();
  release?.();
});
