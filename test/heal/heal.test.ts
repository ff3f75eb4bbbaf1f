import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { homeLayout } from '../../src/config/home.js';
import { healedLine, healInterrupted } from '../../src/heal/index.js';
import { allocateLease } from '../../src/network/leases.js';
import { LOCAL_HOST_ID } from '../../src/store/db.js';
import { listLeases } from '../../src/store/networks-repo.js';
import { insertTemplate } from '../../src/store/templates-repo.js';
import { getVm, insertVm } from '../../src/store/vms-repo.js';
import { getTemplate } from '../../src/store/templates-repo.js';
import { upsertReadyImage } from '../../src/store/images-repo.js';
import { createLogger } from '../../src/util/log.js';
import { addNetworkRecord } from '../network/lease-fixtures.js';
import { deadActor, foreignActor, testActor } from '../helpers/actor.js';
import { withTempDir } from '../helpers/temp-dir.js';
import { openTestStore } from '../helpers/store.js';

// Records only: no QEMU ran for these rows and the network has no namespace, so healing exercises the bookkeeping
// (records, leases, files); the integration tests kill a real fork and a real template creation mid-flight.
test('records left in a transitional state by a dead vmfork are rolled back; a live owner\'s are left alone', withTempDir('vmfork-heal-', async (root) => {
  const home = homeLayout(root);
  const db = await openTestStore();
  const deps = { db, home, log: createLogger(undefined) };
  try {
    await addNetworkRecord(db, 'n1', '10.9.0.0/24');
    const now = new Date().toISOString();
    const dead = await deadActor('fork');
    const live = await testActor('fork');
    // on a store shared by machines: a pid that runs nowhere here, owned by another machine, is not judged dead here
    const foreign = await foreignActor('fork');
    for (const [name, actor] of [['dead-1', dead], ['live-1', live], ['far-1', foreign]] as const) {
      const dir = join(home.vms, name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'disk.qcow2'), 'overlay');
      await allocateLease(db, { network: 'n1', vmName: name });
      await insertVm(db, { name, host_id: LOCAL_HOST_ID, image_name: null, template_name: 't', state: 'forking', role: 'child', dir, spec_json: '{}', last_error: null, created_at: now, updated_at: now }, actor);
    }
    // a template whose creator died while it booted
    await upsertReadyImage(db, { name: 'img', source: 'imported', disk_path: '/x.qcow2', kernel_path: null, initrd_path: null, manifest_path: null, recipe_hash: null, virtual_size: 1, file_size: 1, created_at: now });
    const tdir = join(home.templates, 'tpl');
    mkdirSync(tdir, { recursive: true });
    await insertTemplate(db, { name: 'tpl', image_name: 'img', state: 'booting', dir: tdir, spec_json: '{}', record_json: null, last_error: null, created_at: now, updated_at: now }, await deadActor('template-create'));

    const healed = await healInterrupted(deps);
    assert.deepEqual(healed.map((h) => [h.resource, h.name, h.state, h.ok]), [['template', 'tpl', 'booting', true], ['VM', 'dead-1', 'forking', true]]);
    assert.match(healedLine(healed[1] ?? healed[0]!), new RegExp(`^healed VM dead-1 \\(forking; vmfork pid ${dead.owner.pid} died\\): rolled back: no QEMU running; 10\\.9\\.0\\.2 on n1 \\(tap vt2\\) released; files and record removed$`));
    assert.equal(await getVm(db, 'dead-1'), undefined);
    assert.ok(!existsSync(join(home.vms, 'dead-1')), 'its overlay is gone');
    assert.equal(await getTemplate(db, 'tpl'), undefined);
    assert.ok(!existsSync(tdir), 'the half-made template files are gone');
    assert.deepEqual((await listLeases(db)).map((l) => l.vm_name).sort(), ['far-1', 'live-1'], 'only the live fork and the other machine\'s keep their addresses');
    assert.equal((await getVm(db, 'live-1'))?.state, 'forking', 'a live owner is left to finish its own work');
    assert.equal((await getVm(db, 'far-1'))?.state, 'forking', 'another machine\'s owner is left alone');
    assert.deepEqual(await healInterrupted(deps), [], 'nothing left to heal');
  } finally {
    await db.destroy();
  }
}));
