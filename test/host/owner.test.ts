import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { currentOwner, machineBoot, ownerAlive } from '../../src/host/index.js';
import { deadActor } from '../helpers/actor.js';

test('an owner names its machine and boot: /etc/machine-id and the kernel\'s boot_id', async () => {
  const boot = await machineBoot();
  const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  assert.ok(boot.endsWith(`/${bootId}`), boot);
  assert.equal((await currentOwner()).boot, boot);
});

test('ownerAlive: judged here for this machine and boot, dead for an earlier boot, alive for another machine', async () => {
  const me = await currentOwner();
  const { owner: dead } = await deadActor('task');
  const [machine] = me.boot.split('/');
  assert.equal(await ownerAlive(me), true, 'this process');
  assert.equal(await ownerAlive(dead), false, 'an exited process of this boot');
  assert.equal(await ownerAlive({ ...me, boot: null }), true, 'a row from before owners named their machine is this one\'s');
  assert.equal(await ownerAlive({ ...dead, boot: null }), false);
  assert.equal(await ownerAlive({ ...me, boot: `${machine}/an-earlier-boot` }), false, 'every process of an earlier boot is gone');
  assert.equal(await ownerAlive({ ...dead, boot: 'another-machine/its-boot' }), true, 'another machine\'s pid cannot be looked for here');
  assert.equal(await ownerAlive({ pid: null, startTime: null, boot: null }), false, 'no owner');
});
