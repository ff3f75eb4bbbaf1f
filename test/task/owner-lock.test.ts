import { test } from 'node:test';
import assert from 'node:assert/strict';
import { machineBoot } from '../../src/host/index.js';
import { dialectOf, trySessionLock } from '../../src/store/index.js';
import { serverLockKey, taskOwnerAlive } from '../../src/task/owner-lock.js';
import { openTestStore } from '../helpers/store.js';

test("a task's owner on another machine is alive while its server lock is held (PostgreSQL), and dead once it is not; on this machine its pid decides", async (t) => {
  const db = await openTestStore();
  try {
    if (dialectOf(db) !== 'postgres') {
      t.skip('server locks are PostgreSQL session locks');
      return;
    }
    const elsewhere = { pid: 4242, startTime: 777, boot: 'another-machine/some-boot' };
    const lock = await trySessionLock(db, serverLockKey(elsewhere));
    assert.ok(lock, 'the other server holds its lock');
    assert.equal(await taskOwnerAlive(db, elsewhere), true);
    assert.equal(await taskOwnerAlive(db, elsewhere), true, 'looking does not take the lock away');
    await lock.release();
    assert.equal(await taskOwnerAlive(db, elsewhere), false, 'its connection ended: dead');
    // this machine: the pid and start time, whatever the locks say
    const here = { pid: 4242, startTime: 777, boot: await machineBoot() };
    assert.equal(await taskOwnerAlive(db, here), false);
    assert.equal(await taskOwnerAlive(db, { pid: null, startTime: null, boot: null }), false);
  } finally {
    await db.destroy();
  }
});
