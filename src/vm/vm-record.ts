import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { processesWithArg, removeVmCgroup } from '../host/index.js';
import { escapeOptionValue, terminateProcess, type LaunchedProcess } from '../qemu/index.js';
import { detachVm } from '../network/index.js';
import type { Actor } from '../state/index.js';
import { currentProcess, deleteVm, getVm, listLeases, markProcessExited, transition, type VmRow } from '../store/index.js';
import { removePromotedDisks } from './promote-files.js';
import { hereHost, type VmDeps } from './vm-deps.js';
import { claimVm, describeBusy } from './vm-owner.js';

/** What a teardown found and removed, for the messages of destroy and heal. */
export interface Teardown {
  name: string;
  /** The QEMU that was still running and got stopped (pid), if any. */
  killedPid?: number;
  /** Leases released (`10.231.0.3 on default (tap vt3)`). */
  released: string[];
}

/**
 * Removes everything a VM record stands for, in the order that never strands a resource: its QEMU (only if pid
 * AND start time still match), then its taps and addresses (a tap must not be deleted, nor its address reused,
 * while a process holds it), then its directory, then the record. Every step is idempotent: a teardown cut short
 * is simply run again.
 */
export async function teardownVm(deps: VmDeps, vm: Pick<VmRow, 'name' | 'dir'>, options: { graceMs?: number } = {}): Promise<Teardown> {
  const out: Teardown = { name: vm.name, released: [] };
  const killed = await killVmQemu(deps, vm, options.graceMs);
  if (killed !== undefined) out.killedPid = killed;
  // empty now that its QEMU is gone; one still busy is gc's to remove later
  await removeVmCgroup(deps.home.root, vm.name);
  for (const lease of (await listLeases(deps.db)).filter((l) => l.vm_name === vm.name)) {
    await detachVm(deps.db, lease.network_name, vm.name, hereHost(deps));
    out.released.push(`${lease.ip} on ${lease.network_name} (tap ${lease.tap})`);
  }
  await rm(vm.dir, { recursive: true, force: true });
  // disks a promotion mirrored onto another datastore live outside the VM's directory (docs/promote.md)
  await removePromotedDisks(deps.db, vm.name);
  await deleteVm(deps.db, vm.name);
  return out;
}

/**
 * Stops a VM's QEMU, recorded (only if pid AND start time still match) or stray, and records it exited: the pid
 * that was stopped, if one ran. Its disks, taps and record stay.
 */
export async function killVmQemu(deps: VmDeps, vm: Pick<VmRow, 'name' | 'dir'>, graceMs = 1_000): Promise<number | undefined> {
  let killed: number | undefined;
  const proc = await currentProcess(deps.db, vm.name);
  if (proc) {
    const r = await terminateProcess(proc.pid, proc.start_time, { graceMs });
    if (r !== 'not-running') killed = proc.pid;
    await markProcessExited(deps.db, vm.name);
  }
  const stray = await stopStrayQemu(vm.dir, graceMs);
  return killed ?? stray;
}

/**
 * Stops a QEMU of this VM directory that has no record (its vmfork was killed after starting it and before
 * recording it): found by its QMP socket argument, which names this VM of this data dir and nothing else.
 */
export async function stopStrayQemu(dir: string, graceMs = 1_000): Promise<number | undefined> {
  let stopped: number | undefined;
  for (const p of await processesWithArg(`unix:${escapeOptionValue(join(dir, 'qmp.sock'))},server=on,wait=off`)) {
    if ((await terminateProcess(p.pid, p.startTime, { graceMs })) !== 'not-running') stopped = p.pid;
  }
  return stopped;
}

/** One line saying what a teardown did: `QEMU 5678 stopped; 10.231.0.3 on default (tap vt3) released; files and record removed`. */
export function describeTeardown(t: Teardown): string {
  const parts = [t.killedPid ? `QEMU ${t.killedPid} stopped` : 'no QEMU running'];
  if (t.released.length) parts.push(`${t.released.join(', ')} released`);
  parts.push('files and record removed');
  return parts.join('; ');
}

/**
 * Rolls back a VM an operation was creating (boot, fork, template parent) after `err`: the record goes
 * `destroying` (so no other process mistakes it for a live VM), then teardown. Only a row this process owns is
 * touched, or one whose owner died (taken over first): a row another live process is working on, or one resting
 * (someone else's finished VM), is left alone, and the returned sentence says so for the error the caller rethrows.
 * A rollback that itself fails is logged, not thrown (the caller reports `err`, the cause that matters): the record
 * is still this process's, so the next vmfork command after it exits finishes the job (src/heal/).
 */
export async function rollbackVm(deps: VmDeps, name: string, actor: Actor, err: unknown, launched?: LaunchedProcess): Promise<string | undefined> {
  try {
    const vm = await getVm(deps.db, name);
    if (!vm) return undefined;
    const claim = await claimVm(deps.db, vm, actor);
    if (claim.kind === 'resting' || claim.kind === 'busy') {
      // what this call launched is its own to stop, unless it is the process the row records (the other owner's)
      if (launched && (await currentProcess(deps.db, name))?.pid !== launched.pid) await terminateProcess(launched.pid, launched.startTime, { graceMs: 500 });
      const note = `VM ${name} left alone, not rolled back: it is ${claim.kind === 'busy' ? describeBusy(vm, claim) : `${vm.state}, and no longer this operation's`}`;
      deps.log.warn({ vm: name, state: vm.state, ownerPid: vm.owner_pid, cause: err }, note);
      return note;
    }
    if (vm.state !== 'destroying') await transition(deps.db, 'vms', name, vm.state, 'destroying', actor);
    // a process launched but not yet recorded is stopped here; the recorded one by teardown
    if (launched && !(await currentProcess(deps.db, name))) await terminateProcess(launched.pid, launched.startTime, { graceMs: 500 });
    await teardownVm(deps, vm, { graceMs: 500 });
  } catch (rollbackErr) {
    deps.log.error({ vm: name, err: rollbackErr, cause: err }, 'rollback failed; the next vmfork command heals it');
  }
  return undefined;
}
