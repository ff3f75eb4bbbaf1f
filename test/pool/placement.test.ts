import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostRooms, placementHosts, planPlacement } from '../../src/pool/placement.js';
import { parsePoolSpec } from '../../src/pool/spec.js';
import { ensureDatastore, upsertHost } from '../../src/store/datastores-repo.js';
import { insertImage, type Db } from '../../src/store/index.js';
import { openTestStore } from '../helpers/store.js';
import { testActor } from '../helpers/actor.js';

const BASE = { name: 'desk', image: 'default', datastore: 'main', size: { max: 4 }, disks: { disposable: '64M' }, memory: '512M' };

async function agentHost(db: Db, id: string, memoryGiB: number, free: number | null = 100 * 2 ** 30, cpu: { cpus: number; ratio: number | null } = { cpus: 8, ratio: null }): Promise<void> {
  await upsertHost(db, id, id);
  await db.updateTable('hosts').set({ agent_listen: `http://10.0.0.${id.slice(1)}:8471`, memory_bytes: memoryGiB * 2 ** 30, cpus: cpu.cpus, cpu_allocation_ratio: cpu.ratio }).where('id', '=', id).execute();
  await ensureDatastore(db, { host_id: id, name: 'main', path: `/srv/${id}`, created_at: new Date().toISOString() });
  await db.updateTable('datastores').set({ free_bytes: free }).where('host_id', '=', id).execute();
}

test('planPlacement: spread evens the hosts out (fewest first, order breaks ties); pack fills one host before the next', () => {
  const hosts = [
    { host: 'h1', room: 10, current: 1 },
    { host: 'h2', room: 10, current: 0 },
    { host: 'h3', room: 1, current: 0 },
  ];
  const spread = planPlacement(['a', 'b', 'c', 'd', 'e'], hosts, 'spread');
  assert.deepEqual([...spread], [['a', 'h2'], ['b', 'h3'], ['c', 'h1'], ['d', 'h2'], ['e', 'h1']]);
  const pack = planPlacement(['a', 'b', 'c'], hosts, 'pack');
  assert.deepEqual([...pack.values()], ['h1', 'h1', 'h1']);
  const full = planPlacement(['a', 'b'], [{ host: 'h1', room: 1, current: 5 }, { host: 'h2', room: 3, current: 0 }], 'pack');
  assert.deepEqual([...full.values()], ['h1', 'h2'], 'a full host takes no more, however packed');
  assert.deepEqual([...planPlacement([], hosts, 'spread')], []);
});

test('planPlacement: refused with every host’s figures when the hosts do not hold them all', () => {
  assert.throws(() => planPlacement(['a', 'b', 'c'], [{ host: 'h1', room: 1, current: 0 }, { host: 'h2', room: 1, current: 0 }], 'spread'), (err: Error & { code?: string; details?: Record<string, unknown> }) => {
    assert.equal(err.code, 'VMFORK_INSUFFICIENT_MEMORY');
    assert.match(err.message, /3 children to place, the hosts hold 2 more \(h1: room for 1, h2: room for 1\)/);
    assert.deepEqual([err.details?.asked, err.details?.fit], [3, 2]);
    return true;
  });
});

test('a placement spec: strategy spread by default, hosts deduplicated; up-front and not persistent only', () => {
  assert.deepEqual(parsePoolSpec({ ...BASE, placement: {} }).placement, { strategy: 'spread' });
  assert.deepEqual(parsePoolSpec({ ...BASE, placement: { hosts: ['h1', 'h2', 'h1'], strategy: 'pack' } }).placement, { hosts: ['h1', 'h2'], strategy: 'pack' });
  assert.throws(() => parsePoolSpec({ ...BASE, placement: { strategy: 'random' } }), /placement\.strategy: must be one of spread, pack/);
  assert.throws(() => parsePoolSpec({ ...BASE, placement: { hosts: [] } }), /placement\.hosts: at least 1 host/);
  assert.throws(() => parsePoolSpec({ ...BASE, provisioning: 'on-demand', placement: {} }), /placement: a pool placed over hosts is provisioned up-front/);
  assert.throws(() => parsePoolSpec({ ...BASE, persistent: true, placement: {} }), /placement: a pool placed over hosts is not persistent/);
  assert.equal(parsePoolSpec(BASE).placement, undefined);
  // lazy replicas: recorded only when asked for, a boolean
  assert.deepEqual(parsePoolSpec({ ...BASE, placement: { lazyReplica: true } }).placement, { strategy: 'spread', lazyReplica: true });
  assert.deepEqual(parsePoolSpec({ ...BASE, placement: { lazyReplica: false } }).placement, { strategy: 'spread' });
  assert.throws(() => parsePoolSpec({ ...BASE, placement: { lazyReplica: 'yes' } }), /placement\.lazyReplica/);
});

test("placement hosts: the named ones (an unknown one refused, naming it), else every agent's; each must have the pool's datastore", async () => {
  const db = await openTestStore();
  await agentHost(db, 'h1', 8);
  await agentHost(db, 'h2', 8);
  await upsertHost(db, 'h3', 'h3');
  await db.updateTable('hosts').set({ agent_listen: 'http://10.0.0.3:8471' }).where('id', '=', 'h3').execute();
  const spec = (placement: Record<string, unknown>) => parsePoolSpec({ ...BASE, placement });
  assert.deepEqual((await placementHosts(db, spec({ hosts: ['h2'] }))).map((h) => h.id), ['h2']);
  await assert.rejects(placementHosts(db, spec({ hosts: ['h1', 'h9', 'h8'] })), (err: Error & { code?: string; details?: Record<string, unknown> }) => {
    assert.equal(err.code, 'VMFORK_HOST_NOT_FOUND');
    assert.match(err.message, /unknown hosts h9, h8/);
    assert.deepEqual(err.details?.problems, [{ path: 'placement.hosts', message: err.details?.problems && (err.details.problems as { message: string }[])[0]?.message }]);
    return true;
  });
  await assert.rejects(placementHosts(db, spec({})), /host h3 has no datastore "main"/);
  await db.destroy();
});

test("a host's room: its reported memory (90 %) less what its VMs hold and a template's parent, bounded by its datastore's free bytes; a host not up has none", async () => {
  const db = await openTestStore();
  const now = new Date().toISOString();
  await insertImage(db, { name: 'default', source: 'imported', state: 'ready', disk_path: '/x', kernel_path: null, initrd_path: null, manifest_path: null, recipe_hash: null, virtual_size: 2 ** 30, file_size: 1, created_at: now }, await testActor('image-import'));
  await agentHost(db, 'h1', 4);
  await agentHost(db, 'h2', 4, 3 * 2 ** 30);
  await agentHost(db, 'h3', 64);
  await db.updateTable('hosts').set({ state: 'lost' }).where('id', '=', 'h3').execute();
  const spec = parsePoolSpec({ ...BASE, placement: {} });
  const hosts = await placementHosts(db, spec);
  const rooms = await hostRooms(db, spec, hosts, (h) => h === 'h1');
  // 4 GiB × 0.9 = 3686 MiB; h1 also holds a parent (512 + 64); a child is 512/4 + 64 = 192 MiB
  assert.deepEqual(rooms, [
    { host: 'h1', room: Math.floor((3686 - 576) / 192), current: 0, by: 'memory' },
    { host: 'h2', room: 2, current: 0, by: 'disk' },
    { host: 'h3', room: 0, current: 0 },
  ]);
  await db.destroy();
});

test("a host's room in vCPUs: its CPUs times its agent's allocation ratio (16 by default) less its VMs' vCPUs and a template's parent; a lazy pool's first child holds all its RAM", async () => {
  const db = await openTestStore();
  const now = new Date().toISOString();
  await insertImage(db, { name: 'default', source: 'imported', state: 'ready', disk_path: '/x', kernel_path: null, initrd_path: null, manifest_path: null, recipe_hash: null, virtual_size: 2 ** 30, file_size: 1, created_at: now }, await testActor('image-import'));
  await agentHost(db, 'h1', 64, undefined, { cpus: 2, ratio: 1.5 });
  await agentHost(db, 'h2', 64, undefined, { cpus: 1, ratio: null });
  const spec = parsePoolSpec({ ...BASE, placement: {} });
  const hosts = await placementHosts(db, spec);
  // h1: 2 × 1.5 = 3 vCPUs, less the parent's 1: 2 children; h2: 1 × 16 = 16, no parent: 16
  assert.deepEqual(await hostRooms(db, spec, hosts, (h) => h === 'h1'), [
    { host: 'h1', room: 2, current: 0, by: 'cpu' },
    { host: 'h2', room: 16, current: 0, by: 'cpu' },
  ]);
  assert.throws(() => planPlacement(['a', 'b', 'c'], [{ host: 'h1', room: 2, current: 0, by: 'cpu' }], 'spread'), /h1: room for 2 \(by cpu\)/);
  // lazy: a host without the replica also holds its first child's whole RAM (512 − 128 MiB more than a child)
  await agentHost(db, 'h1', 2, undefined, { cpus: 64, ratio: null });
  const lazy = parsePoolSpec({ ...BASE, placement: { lazyReplica: true } });
  const roomOf = async (p: typeof spec): Promise<number | undefined> => (await hostRooms(db, p, await placementHosts(db, p), () => true))[0]?.room;
  // 2 GiB × 0.9 = 1843 MiB, less the parent's 576: 6 children; lazily, less 384 more for the first child's own RAM: 4
  assert.equal(await roomOf(spec), 6);
  assert.equal(await roomOf(lazy), 4);
  await db.destroy();
});
