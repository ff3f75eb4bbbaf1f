import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VmforkError } from '../../src/errors.js';
import { getVm, listTasks, poolVms } from '../../src/store/index.js';
import { waitUntil } from '../../src/util/index.js';
import { children, deskSpec, WAIT_MS, withPool, type PoolFixture } from './scripted-parts.js';

async function ready(f: PoolFixture, overrides: Parameters<typeof deskSpec>[0]): Promise<void> {
  assert.equal((await f.ended((await f.service.createPool(deskSpec(overrides))).taskId)).state, 'succeeded');
}

const rejectsWith = (code: string) => (err: unknown) => err instanceof VmforkError && err.code === code;

test('claim hands out a running spare at once, for a user and a TTL; with nothing left it is 409 and changes nothing', withPool(async (f) => {
  const { deps, service, parts } = f;
  await ready(f, { size: { max: 2 } });
  const a = await service.claim('desk', { user: 'ada', ttlSeconds: 3600 });
  assert.equal(a.how, 'spare');
  assert.equal(a.vm, 'desk-1');
  assert.equal(a.user, 'ada');
  assert.equal(a.state, 'claimed');
  assert.equal(a.ip, '10.231.0.2');
  assert.ok(a.expiresAt && Date.parse(a.expiresAt) > Date.now() + 3500_000, 'expires in about an hour');
  const b = await service.claim('desk', {});
  assert.equal(b.vm, 'desk-2');
  assert.equal(b.user, null);
  // the claims queued the pool's converge (spares topped up, none to make at max): let it end first, so what the
  // refused claim did is all that can change below
  for (const t of await listTasks(deps.db, { target: 'desk' })) await f.ended(t.id);
  const calls = parts.calls.length;
  const before = await children(deps);
  await assert.rejects(service.claim('desk', {}), (err: unknown) => rejectsWith('VMFORK_POOL_EXHAUSTED')(err) && (err as VmforkError).details?.counts !== undefined);
  assert.deepEqual(await children(deps), before);
  assert.equal(parts.calls.length, calls, `the refused claim reached nothing: ${JSON.stringify(parts.calls.slice(calls))}`);
  assert.deepEqual((await service.listClaims()).map((c) => [c.vm, c.user, c.state]), [['desk-1', 'ada', 'claimed'], ['desk-2', null, 'claimed']]);
  assert.deepEqual(await service.listClaims('other'), []);
}));

test('with no spare, a registered child is forked for the claim in the pool queue, and the spares are topped up', withPool(async (f) => {
  const { deps, service, parts, ended } = f;
  await ready(f, { provisioning: 'on-demand', size: { max: 3, min: 0, spares: 0 } });
  assert.deepEqual(await children(deps), ['desk-1:registered', 'desk-2:registered', 'desk-3:registered']);
  const c = await service.claim('desk', { user: 'bob' });
  assert.equal(c.how, 'forked');
  assert.equal(c.vm, 'desk-1');
  assert.ok(parts.calls.includes('fork desk-1'));
  assert.equal((await getVm(deps.db, 'desk-1'))?.claim_state, 'claimed');
  const task = await ended(c.taskId);
  assert.equal(task.kind, 'pool-claim');
  assert.equal(task.queue, 'desk');
  if (typeof task.result?.followUp === 'string') assert.equal((await ended(task.result.followUp)).state, 'succeeded');
  assert.deepEqual(parts.overlaps, []);
}));

test('release refreshes the child (same name, address) and makes it a spare again; a release of an unclaimed child is 409', withPool(async (f) => {
  const { deps, service, parts, ended } = f;
  await ready(f, { size: { max: 1 } });
  await assert.rejects(service.releaseVm('desk-1'), rejectsWith('VMFORK_VM_NOT_CLAIMED'));
  const c = await service.claim('desk', { user: 'ada' });
  const accepted = await service.releaseVm(c.vm);
  await assert.rejects(service.releaseVm(c.vm), rejectsWith('VMFORK_VM_NOT_CLAIMED'), 'a second release while the first runs');
  const done = await ended(accepted.taskId);
  assert.equal(done.state, 'succeeded');
  assert.equal(done.result?.action, 'refreshed');
  assert.ok(parts.calls.includes('refresh desk-1'));
  const vm = await getVm(deps.db, 'desk-1');
  assert.equal(vm?.state, 'running');
  assert.equal(vm?.claim_state, 'unclaimed');
  assert.equal(vm?.claimed_by, null);
  assert.deepEqual(await service.listClaims(), []);
  const again = await service.claim('desk', {});
  assert.equal(again.vm, 'desk-1');
  assert.equal(again.ip, c.ip, 'the same address after the refresh');
}));

test('two claims racing for one spare: exactly one gets it', withPool(async (f) => {
  await ready(f, { size: { max: 1 } });
  const r = await Promise.allSettled([f.service.claim('desk', {}), f.service.claim('desk', {})]);
  assert.equal(r.filter((x) => x.status === 'fulfilled').length, 1);
  assert.ok(r.some((x) => x.status === 'rejected' && rejectsWith('VMFORK_POOL_EXHAUSTED')(x.reason)));
}));

test('a claim that waits gets the child another user gives back', withPool(async (f) => {
  const { service, ended } = f;
  await ready(f, { size: { max: 1 } });
  const first = await service.claim('desk', { user: 'ada' });
  const waiting = service.claim('desk', { user: 'bob', waitSeconds: 30 });
  await ended((await service.releaseVm(first.vm)).taskId);
  const second = await waiting;
  assert.equal(second.vm, first.vm);
  assert.equal(second.user, 'bob');
}));

test('a claim whose TTL ends is released by the claim clock', withPool(async (f) => {
  const { deps, service, parts } = f;
  await ready(f, { size: { max: 1 } });
  const sweeper = service.startClaimSweeper(20);
  try {
    await service.claim('desk', { ttlSeconds: 1 });
    await waitUntil(async () => (await getVm(deps.db, 'desk-1'))?.claim_state === 'unclaimed' && parts.calls.includes('refresh desk-1'), { deadlineMs: WAIT_MS, everyMs: 20, what: 'the TTL release' });
    assert.equal((await getVm(deps.db, 'desk-1'))?.state, 'running');
  } finally {
    sweeper.stop();
  }
}));

test('a persistent child given back keeps /home and its system disk: stopped, disposable disk reset, booted', withPool(async (f) => {
  const { deps, service, parts, ended } = f;
  await ready(f, { persistent: true, disks: { disposable: '64M', userData: '64M' }, size: { max: 1 } });
  const c = await service.claim('desk', {});
  const done = await ended((await service.releaseVm(c.vm)).taskId);
  assert.equal(done.result?.action, 'disposable reset, booted');
  assert.deepEqual(parts.calls.slice(-3), ['stop desk-1', 'reset desk-1 disposable', 'boot desk-1']);
  assert.deepEqual((await poolVms(deps.db, 'desk')).map((v) => [v.state, v.claim_state]), [['running', 'unclaimed']]);
}));

test('a claim on a pool that does not exist, or with a bad request, changes nothing', withPool(async (f) => {
  await assert.rejects(f.service.claim('nope', {}), rejectsWith('VMFORK_POOL_NOT_FOUND'));
  await assert.rejects(f.service.createPool(deskSpec({ release: { on: ['nap'] } })), (err: unknown) => rejectsWith('VMFORK_INVALID_ARGUMENT')(err) && /release\.on/.test((err as Error).message));
  await assert.rejects(f.service.createPool(deskSpec({ release: { graceSeconds: -1 } })), rejectsWith('VMFORK_INVALID_ARGUMENT'));
  assert.deepEqual(await children(f.deps), []);
}));

test('logoff: once a session was seen, the end of the last one releases the claim (a pool whose policy says so)', withPool(async (f) => {
  const { deps, service, parts } = f;
  await ready(f, { size: { max: 1 }, release: { on: ['logoff'], graceSeconds: 0 } });
  await assert.rejects(service.claim('desk', { ttlSeconds: 60 }), rejectsWith('VMFORK_INVALID_ARGUMENT'), 'no TTL in this pool');
  const sweeper = service.startClaimSweeper(20);
  try {
    await service.claim('desk', { user: 'ada' });
    await waitUntil(() => parts.sessions.get('desk-1'), { deadlineMs: WAIT_MS, everyMs: 10, what: 'the session watch of desk-1' });
    parts.sessions.get('desk-1')?.([]);
    assert.equal((await getVm(deps.db, 'desk-1'))?.claim_state, 'claimed', 'no session seen yet: not a logoff');
    parts.sessions.get('desk-1')?.(['root', 'ada']);
    assert.deepEqual((await service.listClaims()).map((c) => c.sessions), [['root', 'ada']], 'the claim shows who is logged in');
    parts.sessions.get('desk-1')?.(['root']);
    await waitUntil(async () => (await getVm(deps.db, 'desk-1'))?.claim_state === 'unclaimed' && parts.calls.includes('refresh desk-1'), { deadlineMs: WAIT_MS, everyMs: 20, what: 'the logoff release' });
    assert.equal(parts.sessions.has('desk-1'), false, 'the watch is closed with the claim');
  } finally {
    sweeper.stop();
  }
}));

test('poweroff: a claimed child whose QEMU is gone is released (a pool whose policy says so)', withPool(async (f) => {
  const { deps, service, parts } = f;
  await ready(f, { size: { max: 1 }, release: { on: ['poweroff'] } });
  const sweeper = service.startClaimSweeper(20);
  try {
    // scripted children have no QEMU: to the claim clock, a claimed one has powered itself off
    await service.claim('desk', {});
    await waitUntil(async () => (await getVm(deps.db, 'desk-1'))?.claim_state === 'unclaimed' && parts.calls.includes('refresh desk-1'), { deadlineMs: WAIT_MS, everyMs: 20, what: 'the poweroff release' });
  } finally {
    sweeper.stop();
  }
}));

test('size.warm: registered children kept launched; a claim resumes one, and the pool warms the next', withPool(async (f) => {
  const { deps, service, parts, ended } = f;
  await ready(f, { provisioning: 'on-demand', size: { max: 4, min: 0, spares: 0, warm: 2 } });
  assert.deepEqual(await children(deps), ['desk-1:warm', 'desk-2:warm', 'desk-3:registered', 'desk-4:registered']);
  assert.equal((await service.getPool('desk')).counts.warm, 2, 'pool show counts them');
  const c = await service.claim('desk', {});
  assert.deepEqual([c.vm, c.how], ['desk-1', 'warm']);
  assert.ok(parts.calls.includes('resume warm desk-1'));
  const task = await ended(c.taskId);
  if (typeof task.result?.followUp === 'string') assert.equal((await ended(task.result.followUp)).state, 'succeeded');
  assert.deepEqual(await children(deps), ['desk-1:running', 'desk-2:warm', 'desk-3:warm', 'desk-4:registered'], 'refilled in its own queue');
  assert.deepEqual(parts.overlaps, []);
}));

test('a child reserved by a claim counts as made: the converge after a claim forks no extra spare for it', withPool(async (f) => {
  const { deps, service, parts, ended } = f;
  await ready(f, { provisioning: 'on-demand', size: { max: 4, min: 0, spares: 0 } });
  // the first claim's follow-up converge is held until the second claim has reserved its registered child
  parts.hold('replica reused');
  const first = await service.claim('desk', {});
  const second = service.claim('desk', {});
  await waitUntil(async () => (await getVm(deps.db, 'desk-2'))?.claim_state === 'claimed', { deadlineMs: WAIT_MS, everyMs: 10, what: 'the second claim to reserve desk-2' });
  parts.release('replica reused');
  const done = await second;
  assert.deepEqual([first.how, done.how], ['forked', 'forked']);
  for (const c of [first, done]) {
    const t = await ended(c.taskId);
    if (typeof t.result?.followUp === 'string') assert.equal((await ended(t.result.followUp)).state, 'succeeded');
  }
  assert.deepEqual(await children(deps), ['desk-1:running', 'desk-2:running', 'desk-3:registered', 'desk-4:registered'], 'no spare forked: spares 0');
}));
