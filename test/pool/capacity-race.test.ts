import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { actorFor } from '../../src/host/index.js';
import { checkPoolFits, type HostProbe } from '../../src/pool/capacity.js';
import { diskOvercommit, liveReservedMax, setDiskOvercommit } from '../../src/pool/disk-budget.js';
import { parsePoolSpec } from '../../src/pool/index.js';
import { getPoolReservation, insertNetwork, insertPool, insertVm, listPoolRows, LOCAL_HOST_ID, poolVms, putPoolReservation, type Db } from '../../src/store/index.js';
import { deskSpec, withPool } from './scripted-parts.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
/** The scripted fixture's image is 1 GiB; deskSpec's disposable disk 64M: one child's disks at full size. */
const CHILD = GiB + 64 * MiB;
/** A replica of deskSpec: the system disk budgeted 1 GiB plus the disposable disk. */
const REPLICA = GiB + 64 * MiB;
const now = new Date().toISOString();

const host = (availableMiB: number, freeBytes: number): HostProbe => ({
  availableMiB: () => Promise.resolve(availableMiB),
  freeBytes: () => Promise.resolve(freeBytes),
  limits: () => Promise.resolve({ memoryMiB: 1024 * 1024, cpus: 64, datastoreBytes: 1024 * GiB }),
});

async function network(db: Db, name: string, cidr: string): Promise<void> {
  await insertNetwork(db, { name, cidr, netns: `vmfork-${name}`, bridge: `br-${name}`, gateway: cidr.replace(/0\/\d+$/, '1'), owner_id: 'scripted', state: 'ready', created_at: now, updated_at: now }, await actorFor('network-create'));
}

/** A pool accepted and not yet made: its row, as createPool's transaction leaves it. */
async function accepted(db: Db, over: Record<string, unknown>): Promise<void> {
  const spec = parsePoolSpec(deskSpec(over));
  await insertPool(db, { name: spec.name, host_id: LOCAL_HOST_ID, state: 'provisioning', spec_json: JSON.stringify(spec), replica_id: null, template_name: null, task_id: null, last_error: null, created_at: now, updated_at: now }, await actorFor('pool'));
}

test('two creates racing that together do not fit: one is accepted, the other refused and told how many fit', withPool(async ({ deps, service, ended }) => {
  // a /29 leaves 5 addresses: 3 + 3 children do not fit, 3 + 2 would
  await network(deps.db, 'lab', '10.77.0.0/29');
  const results = await Promise.allSettled([
    service.createPool(deskSpec({ name: 'a', network: 'lab', size: { max: 3 } })),
    service.createPool(deskSpec({ name: 'b', network: 'lab', size: { max: 3 } })),
  ]);
  const won = results.filter((r) => r.status === 'fulfilled');
  const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  assert.equal(won.length, 1, 'exactly one create is accepted');
  assert.equal(lost.length, 1);
  const err = lost[0]?.reason as { code: string; details: { fit: number; asked: number; field: string } };
  assert.equal(err.code, 'VMFORK_NETWORK_EXHAUSTED');
  assert.deepEqual([err.details.field, err.details.fit, err.details.asked], ['size.max', 2, 3]);
  const winner = won[0]?.status === 'fulfilled' ? won[0].value : assert.fail('no winner');
  assert.equal((await ended(winner.taskId)).state, 'succeeded');
  assert.equal((await poolVms(deps.db, winner.pool)).length, 3);
  // the loser wrote nothing; the size it was told fits is accepted
  const loser = winner.pool === 'a' ? 'b' : 'a';
  assert.equal((await poolVms(deps.db, loser)).length, 0);
  const retry = await service.createPool(deskSpec({ name: loser, network: 'lab', size: { max: 2 }, naming: { pattern: `${loser}-{n}` } }));
  assert.equal((await ended(retry.taskId)).state, 'succeeded');
}));

test('disk: a pool accepted counts at its full size for the next one, and the overcommit ratio widens the datastore', withPool(async ({ deps }) => {
  // room for two replicas and 5 children: the first pool of 3 fits, the second then holds 2
  const probe = host(64 * 1024, 2 * REPLICA + 5 * CHILD);
  await checkPoolFits(deps.db, parsePoolSpec(deskSpec({ name: 'a', size: { max: 3 } })), probe);
  await accepted(deps.db, { name: 'a', size: { max: 3 } });
  const b = parsePoolSpec(deskSpec({ name: 'b', size: { max: 3 }, naming: { pattern: 'b-{n}' } }));
  await assert.rejects(checkPoolFits(deps.db, b, probe), (err: { code: string; details: { fit: number; asked: number; field: string } }) => {
    assert.equal(err.code, 'VMFORK_NO_SPACE');
    assert.deepEqual([err.details.field, err.details.fit, err.details.asked], ['size.max', 2, 3]);
    return true;
  });
  assert.equal(await diskOvercommit(deps.db), 1, 'the default ratio');
  await setDiskOvercommit(deps.db, '1.5');
  await checkPoolFits(deps.db, b, probe);
  await assert.rejects(setDiskOvercommit(deps.db, '0'), { code: 'VMFORK_INVALID_ARGUMENT', message: /a ratio from 0.1 to 100/ });
  await assert.rejects(setDiskOvercommit(deps.db, 'lots'), { code: 'VMFORK_INVALID_ARGUMENT' });
}));

test('disk: what a child\'s overlays already hold is used space, not counted twice', withPool(async ({ deps }) => {
  await accepted(deps.db, { name: 'a', size: { max: 2 } });
  const dir = join(deps.home.vms, 'a-1');
  await mkdir(dir, { recursive: true });
  const overlay = join(dir, 'disposable.qcow2');
  await writeFile(overlay, Buffer.alloc(8 * MiB, 1));
  await insertVm(deps.db, { name: 'a-1', host_id: LOCAL_HOST_ID, image_name: 'default', state: 'running', role: 'child', dir, spec_json: JSON.stringify({ disks: [{ id: 'disposable', path: overlay, readOnly: false }] }), last_error: null, created_at: now, updated_at: now, template_name: null, pool_name: 'a' }, await actorFor('fork'));
  const b = parsePoolSpec(deskSpec({ name: 'b', size: { max: 1 }, naming: { pattern: 'b-{n}' } }));
  // a's 2 children and replica promised, then b's replica and child: 8M short, and the 8M a-1 wrote make it fit
  const free = 2 * CHILD + REPLICA + REPLICA + CHILD - 8 * MiB;
  await checkPoolFits(deps.db, b, host(64 * 1024, free));
  await assert.rejects(checkPoolFits(deps.db, b, host(64 * 1024, free - MiB)), { code: 'VMFORK_NO_SPACE' });
}));

test('memory: a pool accepted and not yet forked holds its share for the next one', withPool(async ({ deps }) => {
  // a: its template's parent (512 + 64) and 2 children (128 + 64 each) still to come = 960 MiB pending
  await accepted(deps.db, { name: 'a', size: { max: 2 } });
  const b = parsePoolSpec(deskSpec({ name: 'b', size: { max: 2 }, naming: { pattern: 'b-{n}' } }));
  await checkPoolFits(deps.db, b, host(960 + 576 + 2 * 192, 100 * GiB));
  await assert.rejects(checkPoolFits(deps.db, b, host(960 + 576 + 2 * 192 - 1, 100 * GiB)), (err: { code: string; details: { fit: number; asked: number } }) => {
    assert.equal(err.code, 'VMFORK_INSUFFICIENT_MEMORY');
    assert.deepEqual([err.details.fit, err.details.asked], [1, 2]);
    return true;
  });
}));

test('a pool larger than one fork batch is registered in batches of at most 256', withPool(async ({ deps, parts, service, ended }) => {
  await network(deps.db, 'wide', '10.78.0.0/22');
  // 300 children at full size exceed this test host's free disk: the operator overcommits
  await setDiskOvercommit(deps.db, 100);
  const counts: number[] = [];
  const fork = parts.forkChildren.bind(parts);
  parts.forkChildren = (d, o) => {
    counts.push(o.count);
    return fork(d, o);
  };
  const { taskId } = await service.createPool(deskSpec({ network: 'wide', provisioning: 'on-demand', size: { max: 300, min: 0 } }));
  const task = await ended(taskId);
  assert.equal(task.state, 'succeeded', JSON.stringify(task.lastError));
  assert.deepEqual(counts, [256, 44]);
  assert.equal((await poolVms(deps.db, 'desk')).filter((v) => v.state === 'registered').length, 300);
}));

test('host bounds on every path that takes a spec: create, resize and push answer 400 naming the bound, nothing made', withPool(async ({ deps, service, ended }) => {
  const cpus = availableParallelism();
  const refusedAt = async (p: Promise<unknown>, path: string, message: RegExp): Promise<void> => {
    await assert.rejects(p, (err: { code: string; details: { problems: { path: string; message: string }[] } }) => {
      assert.equal(err.code, 'VMFORK_INVALID_ARGUMENT');
      assert.equal(err.details.problems[0]?.path, path);
      assert.match(err.details.problems[0]?.message ?? '', message);
      return true;
    });
  };
  await refusedAt(service.createPool(deskSpec({ cpus: cpus + 1 })), 'cpus', new RegExp(`^at most ${cpus} \\(this host's CPUs\\)$`));
  await refusedAt(service.createPool(deskSpec({ provisioning: 'on-demand', size: { max: 4, min: 0 }, memory: '1T' })), 'memory', /^at most \d+G \(this host's RAM\)$/);
  assert.equal((await listPoolRows(deps.db)).length, 0, 'nothing was made');
  assert.equal((await ended((await service.createPool(deskSpec())).taskId)).state, 'succeeded');
  await refusedAt(service.resizePool('desk', { max: 100_000 }), 'size.max', /^at most 10000$/);
  // a push keeps memory and cpus (a new template otherwise); its disks meet the datastore's bound
  await refusedAt(service.updatePool('desk', deskSpec({ disks: { disposable: '60T' } })), 'disks.disposable', /^at most \d+G \(the size of datastore default\)$/);
  assert.equal((await listPoolRows(deps.db))[0]?.spec_json, JSON.stringify(parsePoolSpec(deskSpec())), 'the pool is as it was');
}));

test('a resize and a create racing: the resize reserves its size with its check, so only one of them is accepted', withPool(async ({ deps, service, ended }) => {
  await network(deps.db, 'lab', '10.77.0.0/29');
  assert.equal((await ended((await service.createPool(deskSpec({ name: 'a', network: 'lab', size: { max: 2 }, naming: { pattern: 'a-{n}' } }))).taskId)).state, 'succeeded');
  // 3 addresses left: a's growth by 2 and b's 3 do not fit together
  const results = await Promise.allSettled([
    service.resizePool('a', { max: 4 }),
    service.createPool(deskSpec({ name: 'b', network: 'lab', size: { max: 3 }, naming: { pattern: 'b-{n}' } })),
  ]);
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, JSON.stringify(results.map((r) => r.status === 'rejected' ? (r.reason as Error).message : 'ok')));
  const lost = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  assert.equal((lost?.reason as { code: string }).code, 'VMFORK_NETWORK_EXHAUSTED');
  for (const r of results) if (r.status === 'fulfilled') assert.equal((await ended(r.value.taskId)).state, 'succeeded');
}));

test('a resize accepted and not yet queued holds its reservation: a create checked in that moment counts it', withPool(async ({ deps, service, ended }) => {
  await network(deps.db, 'lab', '10.77.0.0/29');
  assert.equal((await ended((await service.createPool(deskSpec({ name: 'a', network: 'lab', size: { max: 2 }, naming: { pattern: 'a-{n}' } }))).taskId)).state, 'succeeded');
  // what resizePool's transaction leaves before its task is queued
  await putPoolReservation(deps.db, 'a', 4);
  await assert.rejects(service.createPool(deskSpec({ name: 'b', network: 'lab', size: { max: 3 }, naming: { pattern: 'b-{n}' } })), (err: { code: string; details: { fit: number; asked: number } }) => {
    assert.equal(err.code, 'VMFORK_NETWORK_EXHAUSTED');
    assert.deepEqual([err.details.fit, err.details.asked], [1, 3]);
    return true;
  });
}));

test('a reservation lives while its resize does: unqueued for 5 minutes at most, then as long as its task', withPool(async ({ deps, service, ended }) => {
  assert.equal((await ended((await service.createPool(deskSpec({ size: { max: 1 } }))).taskId)).state, 'succeeded');
  const now = Date.now();
  await putPoolReservation(deps.db, 'desk', 5, new Date(now).toISOString());
  assert.equal(await liveReservedMax(deps.db, 'desk', now + 60_000), 5, 'accepted, its task not queued yet');
  assert.equal(await liveReservedMax(deps.db, 'desk', now + 6 * 60_000), undefined, 'its server died before queueing it');
  const resize = await service.resizePool('desk', { max: 2 });
  assert.equal((await getPoolReservation(deps.db, 'desk'))?.task_id, resize.taskId);
  assert.equal((await ended(resize.taskId)).state, 'succeeded');
  assert.equal(await liveReservedMax(deps.db, 'desk'), undefined, 'its task ended: the spec says the size');
  await service.removePool('desk').then((t) => ended(t.taskId));
  assert.equal(await getPoolReservation(deps.db, 'desk'), undefined, 'gone with its pool');
}));
