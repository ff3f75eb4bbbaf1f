import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendTaskEvent, insertTask, listenTaskEvents, LOCAL_HOST_ID, notifyTaskEvent, openStore, type Db } from '../../src/store/index.js';
import { followTask, listenForTaskEvents } from '../../src/task/index.js';
import { createLogger } from '../../src/util/index.js';
import { testActor } from '../helpers/actor.js';
import { freshPostgresDatabase, testDialect } from '../helpers/store.js';

// Two stores on one database are two servers' connections: what one records, the other hears (LISTEN/NOTIFY).
const skip = testDialect() === 'postgres' ? false : 'LISTEN/NOTIFY is PostgreSQL\'s: run by scripts/test-pg.sh';

async function twoStores(): Promise<[Db, Db]> {
  const url = await freshPostgresDatabase(process.env.VMFORK_TEST_PG_URL ?? '');
  return [await openStore(url), await openStore(url)];
}

async function newTask(db: Db, id: string): Promise<void> {
  const now = new Date().toISOString();
  await insertTask(db, { id, kind: 'pool-create', target: 'desk', state: 'running', step: null, percent: 0, progress_json: '{}', input_json: '{}', result_json: null, last_error: null, host_id: LOCAL_HOST_ID, created_at: now, updated_at: now }, await testActor('task'));
}

test('a task event recorded through one store is announced to a listener on another', { skip }, async () => {
  const [a, b] = await twoStores();
  const heard: string[] = [];
  let wake: (() => void) | undefined;
  const listener = listenTaskEvents(b, (id) => {
    heard.push(id);
    wake?.();
  });
  assert.ok(listener, 'PostgreSQL stores can listen');
  try {
    await listener.ready;
    await newTask(a, 't1');
    const woken = new Promise<void>((resolve) => (wake = resolve));
    await appendTaskEvent(a, 't1', { kind: 'log', message: 'hello', data_json: null });
    await notifyTaskEvent(a, 't1');
    await woken;
    assert.deepEqual(heard, ['t1']);
  } finally {
    await listener.close();
    await a.destroy();
    await b.destroy();
  }
});

test('a follower on another server gets each event when it is recorded, not at its next poll', { skip }, async () => {
  const [a, b] = await twoStores();
  const listener = listenForTaskEvents(b);
  try {
    await listener?.ready;
    await newTask(a, 't2');
    const seen: string[] = [];
    let next: (() => void) | undefined;
    // a poll of ten minutes: only the announcement can deliver these within the test's timeout
    const follow = followTask({ db: b, log: createLogger(undefined) }, 't2', (e) => {
      seen.push(e.message);
      next?.();
    }, { pollMs: 600_000 });
    for (const message of ['one', 'two', 'three']) {
      const delivered = new Promise<void>((resolve) => (next = resolve));
      await appendTaskEvent(a, 't2', { kind: 'log', message, data_json: null });
      await notifyTaskEvent(a, 't2');
      await delivered;
    }
    assert.deepEqual(seen, ['one', 'two', 'three']);
    const end = new Promise<void>((resolve) => (next = resolve));
    await appendTaskEvent(a, 't2', { kind: 'state', message: 'succeeded', data_json: JSON.stringify({ state: 'succeeded' }) });
    await notifyTaskEvent(a, 't2');
    await end;
    await follow;
  } finally {
    await listener?.close();
    await a.destroy();
    await b.destroy();
  }
});

test('on SQLite there is no listener: followers read the table on their own', async () => {
  const db = await openStore(':memory:');
  assert.equal(listenTaskEvents(db, () => undefined), undefined);
  await notifyTaskEvent(db, 'any');
  await db.destroy();
});
