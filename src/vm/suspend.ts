import { rm } from 'node:fs/promises';
import { actorFor } from '../host/index.js';
import { deleteCheckpoint, getCheckpoint, transition } from '../store/index.js';
import { checkpointVm } from './checkpoint.js';
import { checkpointDir } from './checkpoint-rules.js';
import { revertVm } from './checkpoint-revert.js';
import { getVmReconciled } from './lifecycle.js';
import type { VmDeps } from './vm-deps.js';
import { killVmQemu } from './vm-record.js';

/** The checkpoint a suspended VM's state is kept under (one per VM; a user's checkpoints have other labels). */
export const SUSPEND_LABEL = 'vmfork-suspend';

export interface SuspendResult {
  vm: string;
  /** The RAM and device state file's size. */
  stateBytes: number;
  /** From the request to QEMU gone. */
  ms: number;
}

/**
 * Suspends a running VM to its own state file (a persistent pool child's power-off): a checkpoint with memory —
 * file systems frozen, QEMU stopped, the disks' active layers frozen in one transaction and the RAM and device
 * state saved at that same instant — then QEMU ends (`stopped`). What the guest wrote after the cut is in the new
 * layer, which the resume discards: disk and memory always come from one instant. A stale suspend state (a
 * resume that fell back to a boot) is dropped first.
 */
export async function suspendVm(deps: VmDeps, name: string): Promise<SuspendResult> {
  const t0 = performance.now();
  await dropSuspendState(deps, name);
  const cut = await checkpointVm(deps, name, { label: SUSPEND_LABEL, memory: true });
  const vm = await getVmReconciled(deps, name);
  await killVmQemu(deps, vm, 2_000);
  await transition(deps.db, 'vms', name, vm.state, 'stopped', await actorFor('stop'), { last_error: null });
  return { vm: name, stateBytes: cut.stateBytes ?? 0, ms: Math.round(performance.now() - t0) };
}

export type ResumeResult = { vm: string; resumed: true; ms: number } | { vm: string; resumed: false; reason: string };

/**
 * Resumes a suspended VM at the instruction it was suspended at (no boot): a revert to its suspend state. A VM
 * with no suspend state, or whose state file is missing or damaged, is not resumed: the caller boots it from its
 * disks, and `reason` says why. The suspend state is dropped either way (it is good for one resume).
 */
export async function resumeVm(deps: VmDeps, name: string): Promise<ResumeResult> {
  const t0 = performance.now();
  if (!(await getCheckpoint(deps.db, name, SUSPEND_LABEL))) return { vm: name, resumed: false, reason: 'no suspend state (powered off before suspend existed, or never suspended)' };
  try {
    await revertVm(deps, name, SUSPEND_LABEL);
    return { vm: name, resumed: true, ms: Math.round(performance.now() - t0) };
  } catch (err) {
    return { vm: name, resumed: false, reason: `its suspend state did not load: ${(err as Error).message.split('\n')[0] ?? ''}` };
  } finally {
    await dropSuspendState(deps, name);
  }
}

async function dropSuspendState(deps: VmDeps, name: string): Promise<void> {
  const vm = await getVmReconciled(deps, name);
  if (await deleteCheckpoint(deps.db, name, SUSPEND_LABEL)) await rm(checkpointDir(vm.dir, SUSPEND_LABEL), { recursive: true, force: true });
}
