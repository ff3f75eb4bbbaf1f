import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { forkRegistered } from '../../src/fork/index.js';
import type { Actor } from '../../src/state/index.js';
import { openStore } from '../../src/store/db.js';
import { upsertReadyImage } from '../../src/store/images-repo.js';
import { listLeases } from '../../src/store/networks-repo.js';
import { insertTemplate } from '../../src/store/templates-repo.js';
import { transition } from '../../src/store/transition.js';
import { getVm } from '../../src/store/vms-repo.js';
import type { VmDeps } from '../../src/vm/index.js';
import { testActor } from '../helpers/actor.js';
import { withTempDir } from '../helpers/temp-dir.js';
import { addVmRow, afterFirstRead, liveOtherOwner, recordsOnlyDeps } from '../vm/owner-fixtures.js';

const spec = (name: string): string => JSON.stringify({ name, accel: 'tcg', memoryMiB: 256, qmpSocket: `/run/${name}/qmp.sock` });

/** A ready template `t` (records only) and its registered child `r1` holding an address and an overlay. */
async function registeredChild(deps: VmDeps): Promise<string> {
  const now = new Date().toISOString();
  await upsertReadyImage(deps.db, { name: 'img', source: 'imported', disk_path: '/x.qcow2', kernel_path: null, initrd_path: null, manifest_path: null, recipe_hash: null, virtual_size: 1, file_size: 1, created_at: now });
  const tdir = join(deps.home.templates, 't');
  mkdirSync(tdir, { recursive: true });
  await insertTemplate(deps.db, { name: 't', image_name: 'img', state: 'ready', dir: tdir, spec_json: spec('t'), record_json: '{}', last_error: null, created_at: now, updated_at: now }, await testActor('template-create'));
  return addVmRow(deps, 'r1', 'registered', await testActor('fork'), { spec_json: spec('r1') });
}

/**
 * Two power-ons of one registered child: the winner claims it (registered → forking, as `winner`) through its own
 * connection right after the loser has read it as registered, so both passed the state check and race on the
 * claim. The loser must get VMFORK_VM_STATE and leave the winner's child as the winner has it: state, owner,
 * address, files.
 */
async function loserLeavesWinnersChild(root: string, winner: Actor): Promise<void> {
  const base = await recordsOnlyDeps(root);
  try {
    const dir = await registeredChild(base);
    let claimed = false;
    const winnerClaims = async (): Promise<void> => {
      const own = await openStore(base.dbPath);
      try {
        await transition(own, 'vms', 'r1', 'registered', 'forking', winner);
        claimed = true;
      } finally {
        await own.destroy();
      }
    };
    await assert.rejects(forkRegistered({ ...base, db: afterFirstRead(base.db, winnerClaims) }, 'r1'), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'VMFORK_VM_STATE');
      assert.match(err.message, new RegExp(`VM r1 is forking \\(vmfork pid ${winner.owner.pid} is working on it\\), no longer registered; cannot become forking`));
      return true;
    });
    assert.ok(claimed, 'the winner claimed the child between the loser\'s read and its claim');
    const row = await getVm(base.db, 'r1');
    assert.deepEqual([row?.state, row?.owner_pid, row?.owner_start_time], ['forking', winner.owner.pid, winner.owner.startTime], 'the winner\'s claim stands');
    assert.deepEqual((await listLeases(base.db)).map((l) => l.vm_name), ['r1'], 'its address is still held');
    assert.ok(existsSync(join(dir, 'disk.qcow2')), 'its overlay is still there');
  } finally {
    await base.db.destroy();
  }
}

test('two power-ons of one registered child in two processes: one claims it, the loser leaves the winner\'s child intact', { timeout: 30_000 }, withTempDir('vmfork-race-', async (root) => {
  const other = await liveOtherOwner('fork');
  try {
    await loserLeavesWinnersChild(root, other.actor);
  } finally {
    await other.stop();
  }
}));

test('two power-ons of one registered child in one process (a server): the loser does not roll back the winner\'s child', { timeout: 30_000 }, withTempDir('vmfork-race-', async (root) => {
  await loserLeavesWinnersChild(root, await testActor('fork'));
}));
