import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { actorFor, machineBoot, readStartTime } from '../../src/host/index.js';
import type { Actor, OwnerOp } from '../../src/state/index.js';

/** This test process as the owner of whatever it puts in a transitional state (a live owner: heal leaves it alone). */
export function testActor(op: OwnerOp = 'boot'): Promise<Actor> {
  return actorFor(op);
}

/** An owner whose process has exited: what a killed vmfork leaves in its records (pid + the start time it had). */
export async function deadActor(op: OwnerOp): Promise<Actor> {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  const pid = child.pid as number;
  const startTime = await readStartTime(pid);
  assert.ok(startTime !== undefined, 'the short-lived owner started');
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  return { owner: { pid, startTime, boot: await machineBoot() }, op };
}

/**
 * An owner on another machine of a shared store: a pid this machine cannot look for (here: one that is not even
 * running). Nothing here may judge it dead.
 */
export async function foreignActor(op: OwnerOp): Promise<Actor> {
  const dead = await deadActor(op);
  return { owner: { ...dead.owner, boot: 'another-machine-id/another-boot-id' }, op };
}
