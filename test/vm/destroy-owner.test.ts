import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { listLeases } from '../../src/store/networks-repo.js';
import { getVm } from '../../src/store/vms-repo.js';
import { vmStateMachine } from '../../src/state/index.js';
import { destroyVm, rollbackVm } from '../../src/vm/index.js';
import { DESTROYABLE_STATES } from '../../src/vm/vm-owner.js';
import { deadActor, testActor } from '../helpers/actor.js';
import { withTempDir } from '../helpers/temp-dir.js';
import { addVmRow, liveOtherOwner, recordsOnlyDeps } from './owner-fixtures.js';

// Records only: no QEMU runs for these rows and the network has no namespace, so what is checked is who may touch
// a row (records, leases, files); heal's own test covers a dead owner's rows found by the next command.

test('the states destroy may start from are read off the state table: resting states that may become destroying', () => {
  assert.deepEqual(DESTROYABLE_STATES, ['registered', 'warm', 'running', 'paused', 'stopped', 'failed', 'unknown']);
  for (const s of DESTROYABLE_STATES) assert.ok(vmStateMachine.canTransition(s, 'destroying') && !vmStateMachine.isTransitional(s));
});

test('a rollback touches only this process\'s row or a dead owner\'s; a live other owner\'s and a resting row are left alone', { timeout: 30_000 }, withTempDir('vmfork-rollback-', async (root) => {
  const deps = await recordsOnlyDeps(root);
  const other = await liveOtherOwner('fork');
  try {
    const me = await testActor('fork');
    const liveDir = await addVmRow(deps, 'theirs', 'forking', other.actor);
    await addVmRow(deps, 'dead', 'forking', await deadActor('fork'));
    await addVmRow(deps, 'mine', 'forking', me);
    const restingDir = await addVmRow(deps, 'done', 'running', me);

    const note = await rollbackVm(deps, 'theirs', me, new Error('lost the race'));
    const theirs = await getVm(deps.db, 'theirs');
    assert.deepEqual([theirs?.state, theirs?.owner_pid, theirs?.owner_start_time], ['forking', other.actor.owner.pid, other.actor.owner.startTime], 'the live owner keeps its row');
    assert.ok(existsSync(liveDir), 'and its overlay');
    assert.match(note ?? '', new RegExp(`^VM theirs left alone, not rolled back: it is forking \\(vmfork pid ${other.actor.owner.pid} is working on it: fork\\)$`));
    assert.match((await rollbackVm(deps, 'done', me, undefined)) ?? '', /^VM done left alone, not rolled back: it is running, and no longer this operation's$/);
    assert.ok(existsSync(restingDir));

    assert.equal(await rollbackVm(deps, 'dead', me, undefined), undefined);
    assert.equal(await rollbackVm(deps, 'mine', me, undefined), undefined);
    assert.equal(await getVm(deps.db, 'dead'), undefined, 'a dead owner\'s row is taken over and rolled back');
    assert.equal(await getVm(deps.db, 'mine'), undefined, 'this process\'s own row is rolled back');
    assert.deepEqual((await listLeases(deps.db)).map((l) => l.vm_name).sort(), ['done', 'theirs']);
  } finally {
    await other.stop();
    await deps.db.destroy();
  }
}));

test('destroy refuses a VM a live other process is forking (409, the allowed states listed); a dead owner\'s, its own and a resting one go', { timeout: 30_000 }, withTempDir('vmfork-destroy-', async (root) => {
  const deps = await recordsOnlyDeps(root);
  const other = await liveOtherOwner('fork');
  try {
    const liveDir = await addVmRow(deps, 'theirs', 'forking', other.actor);
    await addVmRow(deps, 'dead', 'forking', await deadActor('fork'));
    await addVmRow(deps, 'mine', 'starting', await testActor('boot'));
    await addVmRow(deps, 'rest', 'stopped', await testActor('boot'));

    await assert.rejects(destroyVm(deps, 'theirs'), (err: Error & { code?: string; status?: number; details?: Record<string, unknown> }) => {
      assert.equal(err.code, 'VMFORK_VM_STATE');
      assert.equal(err.status, 409);
      assert.match(err.message, new RegExp(`VM theirs is forking \\(vmfork pid ${other.actor.owner.pid} is working on it: fork\\); destroy is allowed from registered, warm, running, paused, stopped, failed, unknown, or once that process has exited`));
      assert.deepEqual(err.details?.allowed, DESTROYABLE_STATES);
      assert.deepEqual([err.details?.from, err.details?.ownerPid], ['forking', other.actor.owner.pid]);
      return true;
    });
    assert.equal((await getVm(deps.db, 'theirs'))?.state, 'forking', 'the live owner\'s VM is untouched');
    assert.ok(existsSync(liveDir));

    for (const name of ['dead', 'mine', 'rest']) {
      await destroyVm(deps, name);
      assert.equal(await getVm(deps.db, name), undefined, `${name} is destroyed`);
    }
    assert.deepEqual((await listLeases(deps.db)).map((l) => l.vm_name), ['theirs']);

    // once the owner has exited, its VM may be destroyed (taken over first)
    await other.stop();
    await destroyVm(deps, 'theirs');
    assert.equal(await getVm(deps.db, 'theirs'), undefined);
    assert.ok(!existsSync(liveDir));
  } finally {
    await other.stop();
    await deps.db.destroy();
  }
}));
