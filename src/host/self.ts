import { readFile } from 'node:fs/promises';
import { VmforkError } from '../errors.js';
import type { Actor, Owner, OwnerOp } from '../state/index.js';
import { isSameProcess, readStartTime } from './proc-stat.js';

let self: Promise<Owner> | undefined;
let boot: Promise<string> | undefined;

/**
 * This machine and boot, `<machine-id>/<boot_id>`: what an owner's pid is relative to. /etc/machine-id is the
 * machine's (systemd's; a missing one reads as `unknown`), /proc/sys/kernel/random/boot_id changes at every boot.
 */
export function machineBoot(): Promise<string> {
  boot ??= Promise.all([
    readFile('/etc/machine-id', 'utf8').then((t) => t.trim() || 'unknown', () => 'unknown'),
    readFile('/proc/sys/kernel/random/boot_id', 'utf8').then((t) => t.trim()),
  ]).then(([machine, bootId]) => `${machine}/${bootId}`);
  return boot;
}

/** This process as an owner of transitional states: pid + start time (read once from /proc/self/stat) + machine. */
export function currentOwner(): Promise<Owner> {
  self ??= Promise.all([readStartTime(process.pid), machineBoot()]).then(([startTime, b]) => {
    if (startTime === undefined) throw new VmforkError('VMFORK_INTERNAL', 'cannot read this process start time from /proc');
    return { pid: process.pid, startTime, boot: b };
  });
  return self;
}

/**
 * True while the owner process still runs (a zombie, or a pid reused by another process, counts as gone). An owner
 * of this machine's earlier boot is gone. An owner on another machine (a store shared by hosts) cannot be looked
 * for from here: it counts as alive, so no process heals or resumes another machine's work (what a lost host leaves
 * is its own matter, docs/hosts.md). A record written before owners named their machine (null) is this machine's.
 */
export async function ownerAlive(owner: { pid: number | null; startTime: number | null; boot: string | null }): Promise<boolean> {
  if (owner.pid === null || owner.startTime === null) return false;
  if (owner.boot) {
    const here = await machineBoot();
    if (owner.boot !== here) return machineOf(owner.boot) !== machineOf(here);
  }
  return isSameProcess(owner.pid, owner.startTime);
}

const machineOf = (b: string): string => b.slice(0, b.indexOf('/'));

/** This process acting as `op`: what transitions record as the owner of a transitional state. */
export async function actorFor(op: OwnerOp): Promise<Actor> {
  return { owner: await currentOwner(), op };
}
