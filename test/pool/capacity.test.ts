import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { registerLocalHost } from '../../src/host/index.js';
import { checkPoolCapacity, checkPoolFits, poolGrowth, type HostProbe } from '../../src/pool/capacity.js';
import { parsePoolSpec, type PoolSpec } from '../../src/pool/index.js';
import { insertImage, insertNetwork, insertPool, insertReplica, insertTemplate, insertVm, LOCAL_HOST_ID, openStore, type Db } from '../../src/store/index.js';
import type { VmState } from '../../src/state/index.js';
import { testActor } from '../helpers/actor.js';
import { withTempDir } from '../helpers/temp-dir.js';
import { testHomeLayout } from '../helpers/store.js';

const GiB = 1024 ** 3;
const now = new Date().toISOString();

/** One child's disks at full size: the image's virtual size (1 byte here) and the 128M disposable disk. */
const CHILD = 1 + 128 * 1024 ** 2;

/** A scripted host: so many MiB of memory available, so many bytes free on every datastore; its bounds are wide. */
const host = (availableMiB: number, freeBytes = 100 * GiB): HostProbe => ({
  availableMiB: () => Promise.resolve(availableMiB),
  freeBytes: () => Promise.resolve(freeBytes),
  limits: () => Promise.resolve({ memoryMiB: 1024 * 1024, cpus: 64, datastoreBytes: 1024 * GiB }),
});

function spec(over: object): PoolSpec {
  return parsePoolSpec({ name: 'desk', image: 'default', size: { max: 4 }, naming: { pattern: 'desk-{n}' }, disks: { disposable: '128M' }, ...over });
}

interface Refused {
  code: string;
  message: string;
  details: { fit: number; asked: number; field: string; problems: { path: string }[] };
}

async function refused(check: Promise<void>): Promise<Refused> {
  return check.then(
    () => assert.fail('the check passed'),
    (err: unknown) => err as Refused,
  );
}

async function withStore(dir: string, fn: (db: Db) => Promise<void>): Promise<void> {
  const home = await testHomeLayout(dir);
  const db = await openStore(home.db);
  try {
    await registerLocalHost({ db, home });
    await insertImage(db, { name: 'default', source: 'imported', state: 'ready', disk_path: '/x', kernel_path: null, initrd_path: null, manifest_path: null, recipe_hash: null, virtual_size: 1, file_size: 1, created_at: now }, await testActor('image-import'));
    await fn(db);
  } finally {
    await db.destroy();
  }
}

/** A pool as a finished create leaves it: replica and template ready, children in the given states. */
async function madePool(db: Db, s: PoolSpec, children: [string, VmState, boolean?][]): Promise<void> {
  await insertReplica(db, { id: 'r1', image_name: 'default', image_version: 'v1', phase1_digest: 'd', host_id: LOCAL_HOST_ID, datastore: 'default', state: 'ready', dir: '/r1', disks_json: '[]', phase1_json: null, last_error: null, created_at: now, updated_at: now }, await testActor('replica-create'));
  await insertTemplate(db, { name: 'rt-r1', image_name: 'default', state: 'ready', dir: '/t', spec_json: '{}', record_json: null, replica_id: 'r1', last_error: null, created_at: now, updated_at: now }, await testActor('template-create'));
  await insertPool(db, { name: s.name, host_id: LOCAL_HOST_ID, state: 'ready', spec_json: JSON.stringify(s), replica_id: 'r1', template_name: 'rt-r1', task_id: null, last_error: null, created_at: now, updated_at: now }, await testActor('pool'));
  for (const [name, state, claimed] of children) {
    await insertVm(db, { name, host_id: LOCAL_HOST_ID, image_name: null, state, role: 'child', dir: join('/vms', name), spec_json: '{}', last_error: null, created_at: now, updated_at: now, template_name: 'rt-r1', pool_name: s.name, claimed_at: claimed ? now : null }, await testActor('fork'));
  }
}

test('an on-demand pool with min 0 still checks the template: memory 512G is refused at create, blaming memory', withTempDir('vmfork-cap-', (dir) => withStore(dir, async (db) => {
  const s = spec({ provisioning: 'on-demand', size: { max: 4, min: 0 }, memory: '512G' });
  assert.deepEqual(await poolGrowth(db, s), { fork: 0, reserve: 4 });
  const err = await refused(checkPoolFits(db, s, host(16 * 1024)));
  assert.equal(err.code, 'VMFORK_INSUFFICIENT_MEMORY');
  assert.equal(err.details.field, 'memory');
  assert.deepEqual(err.details.problems.map((p) => p.path), ['memory']);
  assert.deepEqual([err.details.fit, err.details.asked], [0, 1]);
  assert.match(err.message, /pool spec: memory: 1 children of 524288 MiB to fork beside the template's parent .* holds 0/);
  // the same pool with a size the host holds is accepted
  await checkPoolFits(db, spec({ provisioning: 'on-demand', size: { max: 4, min: 0 }, memory: '1G' }), host(16 * 1024));
})));

test('an up-front create that does not fit says how many would: the template parent, then a quarter of RAM per child', withTempDir('vmfork-cap-', (dir) => withStore(dir, async (db) => {
  // 1G children: the parent holds 1024 + 64 MiB, each child 256 + 64; 4096 MiB holds (4096 - 1088) / 320 = 9
  const err = await refused(checkPoolFits(db, spec({ size: { max: 10 }, memory: '1G' }), host(4096)));
  assert.equal(err.code, 'VMFORK_INSUFFICIENT_MEMORY');
  assert.deepEqual([err.details.field, err.details.fit, err.details.asked], ['size.max', 9, 10]);
  await checkPoolFits(db, spec({ size: { max: 9 }, memory: '1G' }), host(4096));
})));

test('disk: the replica, then each child\'s disks at full size on the pool\'s datastore; a resize counts the children it has at full size too', withTempDir('vmfork-cap-', (dir) => withStore(dir, async (db) => {
  const replica = GiB + 128 * 1024 ** 2;
  const err = await refused(checkPoolCapacity(db, spec({ size: { max: 5 } }), undefined, host(64 * 1024, replica + 3 * CHILD)));
  assert.equal(err.code, 'VMFORK_NO_SPACE');
  assert.deepEqual([err.details.field, err.details.fit, err.details.asked], ['size.max', 3, 5]);
  const tooSmall = await refused(checkPoolCapacity(db, spec({}), undefined, host(64 * 1024, GiB)));
  assert.deepEqual([tooSmall.code, tooSmall.details.field, tooSmall.details.fit], ['VMFORK_NO_SPACE', 'disks.disposable', 0]);
  // a pool with its replica: growing 4 → 7 needs no replica, but its 4 children may still grow to full size
  // (their overlays hold nothing yet: no files here)
  const s = spec({});
  await madePool(db, s, [['desk-1', 'running'], ['desk-2', 'running'], ['desk-3', 'running'], ['desk-4', 'running']]);
  const bigger = spec({ size: { max: 7 } });
  assert.deepEqual(await poolGrowth(db, bigger), { fork: 3, reserve: 3 });
  await checkPoolFits(db, bigger, host(64 * 1024, 7 * CHILD));
  const grow = await refused(checkPoolFits(db, bigger, host(64 * 1024, 6 * CHILD)));
  assert.deepEqual([grow.code, grow.details.fit, grow.details.asked], ['VMFORK_NO_SPACE', 2, 3]);
})));

test('addresses: each reserved child needs a free lease in the pool\'s network', withTempDir('vmfork-cap-', (dir) => withStore(dir, async (db) => {
  // a /29 has 8 addresses: the network, the gateway and the broadcast leave 5 for VMs
  await insertNetwork(db, { name: 'lab', cidr: '10.77.0.0/29', netns: 'vmfork-lab', bridge: 'vmfbr-lab', gateway: '10.77.0.1', owner_id: 'x', state: 'ready', created_at: now, updated_at: now }, await testActor('network-create'));
  const err = await refused(checkPoolFits(db, spec({ network: 'lab', size: { max: 6 } }), host(64 * 1024)));
  assert.equal(err.code, 'VMFORK_NETWORK_EXHAUSTED');
  assert.deepEqual([err.details.field, err.details.fit, err.details.asked], ['size.max', 5, 6]);
  await checkPoolFits(db, spec({ network: 'lab', size: { max: 5 } }), host(64 * 1024));
  // the default network is made on first use: its whole /24 (253 addresses) is free until then
  const big = await refused(checkPoolCapacity(db, spec({ size: { max: 300 } }), undefined, host(1024 * 1024)));
  assert.deepEqual([big.code, big.details.fit, big.details.asked], ['VMFORK_NETWORK_EXHAUSTED', 253, 300]);
})));

test('power-on and on-demand growth: the template is there, so only the children forked count; the caller names the field', withTempDir('vmfork-cap-', (dir) => withStore(dir, async (db) => {
  const s = spec({ provisioning: 'on-demand', size: { max: 4, min: 1, spares: 1 }, memory: '1G' });
  await madePool(db, s, [['desk-1', 'running', true], ['desk-2', 'running'], ['desk-3', 'registered'], ['desk-4', 'registered']]);
  // one claimed, one spare forked: the pool is where its spec wants it
  assert.deepEqual(await poolGrowth(db, s), { fork: 0, reserve: 0 });
  // powering desk-3 on forks one child of 1G: 256 + 64 MiB, no parent any more
  await checkPoolCapacity(db, s, { fork: 1, reserve: 0 }, host(320));
  const err = await refused(checkPoolCapacity(db, s, { fork: 1, reserve: 0, field: 'vm' }, host(319)));
  assert.equal(err.code, 'VMFORK_INSUFFICIENT_MEMORY');
  assert.deepEqual([err.details.field, err.details.fit, err.details.asked], ['vm', 0, 1]);
  // a persistent child booted from its own disks holds its whole RAM
  const boot = await refused(checkPoolCapacity(db, s, { fork: 0, reserve: 0, boot: 1, field: 'vm' }, host(1024)));
  assert.equal(boot.code, 'VMFORK_INSUFFICIENT_MEMORY');
})));

test('a resize checks the new names against other VMs, not the pool\'s own children', withTempDir('vmfork-cap-', (dir) => withStore(dir, async (db) => {
  const s = spec({});
  await madePool(db, s, [['desk-1', 'running'], ['desk-2', 'running'], ['desk-3', 'running'], ['desk-4', 'running']]);
  await checkPoolFits(db, spec({ size: { max: 5 } }), host(64 * 1024));
  await insertVm(db, { name: 'desk-6', host_id: LOCAL_HOST_ID, image_name: 'default', state: 'stopped', role: 'vm', dir: '/vms/desk-6', spec_json: '{}', last_error: null, created_at: now, updated_at: now, template_name: null }, await testActor('boot'));
  await assert.rejects(checkPoolFits(db, spec({ size: { max: 6 } }), host(64 * 1024)), { code: 'VMFORK_VM_EXISTS', message: /naming: child name "desk-6"/ });
})));
