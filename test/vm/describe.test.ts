import { test } from 'node:test';
import assert from 'node:assert/strict';
import { homeLayout } from '../../src/config/home.js';
import { allocateLease } from '../../src/network/leases.js';
import { LOCAL_HOST_ID } from '../../src/store/db.js';
import { insertVm } from '../../src/store/vms-repo.js';
import { createLogger } from '../../src/util/log.js';
import { listVmSummaries, showVm } from '../../src/vm/index.js';
import { addNetworkRecord } from '../network/lease-fixtures.js';
import { testActor } from '../helpers/actor.js';
import { openTestStore } from '../helpers/store.js';

// Records only, all stopped: a stopped VM is not checked against a QEMU process, so no VM runs here.
test('vm list and vm show carry each VM\'s pool and address (null without one)', async () => {
  const db = await openTestStore();
  const deps = { db, home: homeLayout('/nonexistent'), log: createLogger(undefined) };
  try {
    await addNetworkRecord(db, 'n1', '10.9.0.0/24');
    const now = new Date().toISOString();
    const actor = await testActor('fork');
    const row = { host_id: LOCAL_HOST_ID, image_name: null, state: 'stopped', role: 'child', dir: '/nonexistent', spec_json: '{"memoryMiB":512,"cpus":1}', last_error: null, created_at: now, updated_at: now } as const;
    await insertVm(db, { ...row, name: 'desk-1', template_name: 't', pool_name: 'desk' }, actor);
    await allocateLease(db, { network: 'n1', vmName: 'desk-1' });
    await insertVm(db, { ...row, name: 'solo', template_name: null, role: 'vm' }, actor);

    const rows = await listVmSummaries(deps);
    assert.deepEqual(rows.map((r) => [r.name, r.pool, r.ip, r.memoryMiB]), [['desk-1', 'desk', '10.9.0.2', 512], ['solo', null, null, 512]]);
    const one = await showVm(deps, 'desk-1');
    assert.equal(one.pool, 'desk');
    assert.equal(one.ip, '10.9.0.2');
  } finally {
    await db.destroy();
  }
});
