import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { checkPoolRefs } from '../../src/pool/refs.js';
import { listHosts, registerLocalHost, requireDatastore } from '../../src/host/index.js';
import { parsePoolSpec } from '../../src/pool/index.js';
import { insertImage, LOCAL_HOST_ID, openStore } from '../../src/store/index.js';
import { testActor } from '../helpers/actor.js';
import { withTempDir } from '../helpers/temp-dir.js';
import { testHomeLayout } from '../helpers/store.js';

test('the local host registers itself with its default datastore under the data dir, idempotently', withTempDir('vmfork-hosts-', async (dir) => {
  const home = await testHomeLayout(dir);
  const db = await openStore(home.db);
  try {
    await registerLocalHost({ db, home });
    await registerLocalHost({ db, home });
    const [host, ...others] = await listHosts({ db, home });
    assert.equal(others.length, 0);
    assert.equal(host?.id, LOCAL_HOST_ID);
    assert.equal(host?.local, true);
    assert.deepEqual(host?.datastores.map((d) => [d.name, d.path]), [['default', join(dir, 'datastores', 'default')]]);
    assert.ok((host?.datastores[0]?.freeBytes ?? 0) > 0);
    assert.ok(existsSync(join(dir, 'datastores', 'default')));
    await assert.rejects(requireDatastore(db, 'fast'), { code: 'VMFORK_DATASTORE_NOT_FOUND' });
  } finally {
    await db.destroy();
  }
}));

test('checkPoolRefs: an unknown image, network or datastore is its own 404 naming the spec field', withTempDir('vmfork-refs-', async (dir) => {
  const home = await testHomeLayout(dir);
  const db = await openStore(home.db);
  try {
    await registerLocalHost({ db, home });
    const spec = (over: object) => parsePoolSpec({ name: 'desk', image: 'default', size: { max: 2 }, disks: { disposable: '64M' }, ...over });
    await assert.rejects(checkPoolRefs(db, spec({})), (err: { code: string; status: number; message: string; details: { problems: { path: string }[] } }) => {
      assert.equal(err.code, 'VMFORK_IMAGE_NOT_FOUND');
      assert.equal(err.status, 404);
      assert.match(err.message, /pool spec: image: no image named "default"/);
      assert.deepEqual(err.details.problems.map((p) => p.path), ['image']);
      return true;
    });
    const now = new Date().toISOString();
    await insertImage(db, { name: 'default', source: 'imported', state: 'ready', disk_path: '/x', kernel_path: null, initrd_path: null, manifest_path: null, recipe_hash: null, virtual_size: 1, file_size: 1, created_at: now }, await testActor('image-import'));
    await checkPoolRefs(db, spec({}));
    await assert.rejects(checkPoolRefs(db, spec({ network: 'lab' })), { code: 'VMFORK_NETWORK_NOT_FOUND', message: /pool spec: network/ });
    await assert.rejects(checkPoolRefs(db, spec({ datastore: 'fast' })), { code: 'VMFORK_DATASTORE_NOT_FOUND', message: /pool spec: datastore/ });
  } finally {
    await db.destroy();
  }
}));
