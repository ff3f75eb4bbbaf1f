import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LOCAL_HOST_ID } from '../../src/store/db.js';
import { assignQemuUid, deleteVm, insertVm } from '../../src/store/vms-repo.js';
import { testActor } from '../helpers/actor.js';
import { openTestStore } from '../helpers/store.js';

// Each VM's QEMU runs as a uid of its own (src/vm/vm-confine.ts): the store hands them out, one per VM.
test('assignQemuUid: the lowest free uid of the range, the same one again for the same VM, freed with the VM; a full range is refused', async () => {
  const db = await openTestStore();
  const now = new Date().toISOString();
  const add = async (name: string): Promise<void> =>
    insertVm(db, { name, host_id: LOCAL_HOST_ID, image_name: null, state: 'stopped', role: 'vm', dir: `/d/${name}`, spec_json: '{}', last_error: null, created_at: now, updated_at: now }, await testActor('boot'));
  try {
    for (const n of ['a', 'b', 'c', 'd']) await add(n);
    assert.equal(await assignQemuUid(db, 'a', 1000, 3), 1000);
    assert.equal(await assignQemuUid(db, 'b', 1000, 3), 1001);
    assert.equal(await assignQemuUid(db, 'a', 1000, 3), 1000, 'kept across launches');
    assert.equal(await assignQemuUid(db, 'c', 1000, 3), 1002);
    await assert.rejects(assignQemuUid(db, 'd', 1000, 3), { code: 'VMFORK_VM_START_FAILED', message: /no free QEMU uid/ });
    await deleteVm(db, 'b');
    assert.equal(await assignQemuUid(db, 'd', 1000, 3), 1001, 'a removed VM frees its uid');
    const all = await Promise.all(['a', 'c', 'd'].map((n) => assignQemuUid(db, n, 1000, 3)));
    assert.equal(new Set(all).size, 3, 'no two VMs share one');
  } finally {
    await db.destroy();
  }
});
