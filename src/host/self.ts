import { VmforkError } from '../errors.js';
import type { Actor, Owner, OwnerOp } from '../state/index.js';
import { isSameProcess, readStartTime } from './proc-stat.js';

let self: Promise<Owner> | undefined;

/** This process as an owner of transitional states: pid + start time (read once from /proc/self/stat). */
export function currentOwner(): Promise<Owner> {
  self ??= readStartTime(process.pid).then((startTime) => {
    if (startTime === undefined) throw new VmforkError('VMFORK_INTERNAL', 'cannot read this process start time from /proc');
    return { pid: process.pid, startTime };
  });
  return self;
}

/** True while the owner process still runs (a zombie, or a pid reused by another process, counts as gone). */
export async function ownerAlive(owner: { pid: number | null; startTime: number | null }): Promise<boolean> {
  if (owner.pid === null || owner.startTime === null) return false;
  return isSameProcess(owner.pid, owner.startTime);
}

/** This process acting as `op`: what transitions record as the owner of a transitional state. */
export async function actorFor(op: OwnerOp): Promise<Actor> {
  return { owner: await currentOwner(), op };
}
