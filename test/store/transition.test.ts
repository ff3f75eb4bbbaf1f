import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LOCAL_HOST_ID, type Db } from '../../src/store/db.js';
import { takeOver, transition, transitionalRows } from '../../src/store/transition.js';
import { getVm, insertVm } from '../../src/store/vms-repo.js';
import type { VmState } from '../../src/state/index.js';
import { deadActor, testActor } from '../helpers/actor.js';
import { openTestStore } from '../helpers/store.js';

async function withVm(state: VmState, fn: (db: Db) => Promise<void>): Promise<void> {
  const db = await openTestStore();
  const now = new Date().toISOString();
  try {
    await insertVm(db, { name: 'v1', host_id: LOCAL_HOST_ID, image_name: null, state, role: 'vm', dir: '/d', spec_json: '{}', last_error: null, created_at: now, updated_at: now }, await testActor('boot'));
    await fn(db);
  } finally {
    await db.destroy();
  }
}

test('a transitional state records its owner and operation; a resting state clears them', () =>
  withVm('creating', async (db) => {
    const me = await testActor('boot');
    let row = await getVm(db, 'v1');
    assert.deepEqual([row?.owner_pid, row?.owner_start_time, row?.owner_op], [me.owner.pid, me.owner.startTime, 'boot']);
    await transition(db, 'vms', 'v1', 'creating', 'starting', me);
    assert.equal((await getVm(db, 'v1'))?.owner_pid, me.owner.pid);
    await transition(db, 'vms', 'v1', 'starting', 'running', me, { last_error: null });
    row = await getVm(db, 'v1');
    assert.deepEqual([row?.state, row?.owner_pid, row?.owner_start_time, row?.owner_op], ['running', null, null, null]);
    assert.deepEqual(await transitionalRows(db, 'vms'), []);
  }));

test('compare-and-set: of two processes racing for one move, exactly one wins; the other is told what it found', () =>
  withVm('running', async (db) => {
    const a = await testActor('stop');
    const results = await Promise.allSettled([transition(db, 'vms', 'v1', 'running', 'stopping', a), transition(db, 'vms', 'v1', 'running', 'destroying', a)]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const lost = results.find((r) => r.status === 'rejected');
    assert.ok(lost?.status === 'rejected');
    assert.equal((lost.reason as { code: string }).code, 'VMFORK_VM_STATE');
    assert.match(String((lost.reason as Error).message), /VM v1 is (stopping|destroying) \(vmfork pid \d+ is working on it\), no longer running/);
  }));

test('a move outside the table is refused before anything is written; a missing record is NOT_FOUND', () =>
  withVm('stopped', async (db) => {
    const me = await testActor('start');
    await assert.rejects(transition(db, 'vms', 'v1', 'stopped', 'running', me), { code: 'VMFORK_VM_STATE', message: /v1 is stopped; cannot become running/ });
    assert.equal((await getVm(db, 'v1'))?.state, 'stopped');
    await assert.rejects(transition(db, 'vms', 'nope', 'stopped', 'starting', me), { code: 'VMFORK_VM_NOT_FOUND' });
    await assert.rejects(transition(db, 'templates', 'nope', 'ready', 'deleting', me), { code: 'VMFORK_TEMPLATE_NOT_FOUND' });
  }));

test('takeOver: of several healers of a dead owner\'s record, exactly one gets it', async () => {
  const db = await openTestStore();
  try {
    const dead = await deadActor('fork');
    const now = new Date().toISOString();
    await insertVm(db, { name: 'c1', host_id: LOCAL_HOST_ID, image_name: null, state: 'forking', role: 'child', dir: '/d', spec_json: '{}', last_error: null, created_at: now, updated_at: now }, dead);
    const [row] = await transitionalRows(db, 'vms');
    assert.ok(row);
    assert.deepEqual([row.owner_pid, row.owner_op], [dead.owner.pid, 'fork']);
    const me = await testActor('fork');
    const wins = await Promise.all([1, 2, 3].map(() => takeOver(db, 'vms', 'c1', 'forking', row, me)));
    assert.equal(wins.filter(Boolean).length, 1);
    assert.equal((await getVm(db, 'c1'))?.owner_pid, me.owner.pid);
    assert.equal((await getVm(db, 'c1'))?.owner_op, 'fork', 'the operation being healed is kept');
  } finally {
    await db.destroy();
  }
});
