import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getVm, poolVms } from '../../src/store/index.js';
import { children, deskSpec, withPool } from './scripted-parts.js';

test('power-off of a non-persistent child refreshes it: destroyed, and its name registered again by the follow-up converge', withPool(async ({ deps, parts, service, ended }) => {
  assert.equal((await ended((await service.createPool(deskSpec({ provisioning: 'on-demand', size: { max: 3, min: 1, spares: 1 } }))).taskId)).state, 'succeeded');
  assert.deepEqual(await children(deps), ['desk-1:running', 'desk-2:registered', 'desk-3:registered']);
  const off = await ended((await service.powerOff('desk-1')).taskId);
  assert.equal(off.state, 'succeeded');
  assert.equal(off.result?.action, 'refreshed');
  assert.equal((await ended(off.result?.followUp as string)).state, 'succeeded');
  // the spare is taken from the registered children first; the refreshed name is registered on fresh overlays
  assert.deepEqual(await children(deps), ['desk-1:registered', 'desk-2:running', 'desk-3:registered']);
  assert.deepEqual(parts.calls.slice(parts.calls.indexOf('destroy desk-1')), ['destroy desk-1', 'replica reused', 'template', 'fork desk-2', 'register desk-1']);
}));

test('power-on of a registered child forks and claims it; a follow-up converge keeps the spares', withPool(async ({ deps, parts, service, ended }) => {
  assert.equal((await ended((await service.createPool(deskSpec({ provisioning: 'on-demand', size: { max: 4, min: 0, spares: 1 } }))).taskId)).state, 'succeeded');
  assert.deepEqual(await children(deps), ['desk-1:running', 'desk-2:registered', 'desk-3:registered', 'desk-4:registered']);
  const on = await ended((await service.powerOn('desk-3')).taskId);
  assert.equal(on.state, 'succeeded');
  assert.equal(on.result?.action, 'forked');
  assert.notEqual((await getVm(deps.db, 'desk-3'))?.claimed_at, null, 'claimed');
  const follow = await ended(on.result?.followUp as string);
  assert.equal(follow.kind, 'pool-converge');
  assert.equal(follow.state, 'succeeded');
  const vms = await poolVms(deps.db, 'desk');
  const spares = vms.filter((v) => v.state === 'running' && v.claimed_at === null).map((v) => v.name);
  assert.deepEqual(spares, ['desk-1'], 'one unclaimed running child: the spare');
  assert.deepEqual(parts.overlaps, []);
}));

test('power-on of a running spare hands it out as it is (claimed) and the follow-up converge forks the next spare', withPool(async ({ deps, parts, service, ended }) => {
  assert.equal((await ended((await service.createPool(deskSpec({ provisioning: 'on-demand', size: { max: 4, min: 0, spares: 1 } }))).taskId)).state, 'succeeded');
  assert.deepEqual(await children(deps), ['desk-1:running', 'desk-2:registered', 'desk-3:registered', 'desk-4:registered']);
  const on = await ended((await service.powerOn('desk-1')).taskId);
  assert.equal(on.result?.action, 'claimed');
  assert.notEqual((await getVm(deps.db, 'desk-1'))?.claimed_at, null, 'claimed');
  assert.equal((await ended(on.result?.followUp as string)).state, 'succeeded');
  assert.deepEqual(await children(deps), ['desk-1:running', 'desk-2:running', 'desk-3:registered', 'desk-4:registered'], 'desk-2 forked as the new spare');
  const again = await ended((await service.powerOn('desk-1')).taskId);
  assert.equal(again.result?.action, 'unchanged', 'a claimed child powered on again is left as it is');
  assert.deepEqual(parts.overlaps, []);
}));

test('a persistent child powered off is suspended and unclaimed; powered on it resumes (or, its state damaged, boots) and is claimed', withPool(async ({ deps, parts, service, ended }) => {
  assert.equal((await ended((await service.createPool(deskSpec({ persistent: true, disks: { disposable: '64M', userData: '64M' }, size: { max: 2 } }))).taskId)).state, 'succeeded');
  const off = await ended((await service.powerOff('desk-1')).taskId);
  assert.equal(off.result?.action, 'suspended');
  assert.equal(off.result?.followUp, undefined, 'nothing to converge: its disks are kept');
  assert.deepEqual(await children(deps), ['desk-1:stopped', 'desk-2:running']);
  const on = await ended((await service.powerOn('desk-1')).taskId);
  assert.equal(on.result?.action, 'resumed');
  assert.notEqual((await getVm(deps.db, 'desk-1'))?.claimed_at, null);
  assert.deepEqual(parts.calls.slice(-2), ['suspend desk-1', 'resume desk-1']);
  assert.deepEqual(await children(deps), ['desk-1:running', 'desk-2:running']);
  // a damaged state: the child boots from its disks, and the result says why
  parts.damaged.add('desk-2');
  assert.equal((await ended((await service.powerOff('desk-2')).taskId)).result?.action, 'suspended');
  const boot = await ended((await service.powerOn('desk-2')).taskId);
  assert.deepEqual([boot.result?.action, boot.result?.resumeError], ['booted', 'its suspend state did not load: scripted damage']);
  assert.deepEqual(parts.calls.slice(-2), ['resume desk-2', 'boot desk-2']);
}));
