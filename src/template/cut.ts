import { removeVmCgroup, waitForExit } from '../host/index.js';
import { detachVm } from '../network/index.js';
import { freezeToFile, terminateProcess, type FreezeResult, type LaunchedProcess } from '../qemu/index.js';
import type { Actor } from '../state/index.js';
import { deleteVm, markProcessExited, transition } from '../store/index.js';
import { hereHost, type VmDeps } from '../vm/index.js';

/**
 * The cut: freezes the parent into its device-state file (src/qemu/freeze-resume.ts: stop, x-ignore-shared,
 * migrate, quit) and makes sure its QEMU is gone before the files are sealed — nothing may write the RAM file once
 * children can map it.
 */
export async function cutTemplate(qmpPath: string, statePath: string, proc: LaunchedProcess): Promise<FreezeResult> {
  const result = await freezeToFile(qmpPath, statePath);
  if (!(await waitForExit(proc.pid, proc.startTime, 10_000))) await terminateProcess(proc.pid, proc.startTime, { graceMs: 2_000 });
  return result;
}

export interface ParentToFreeze {
  qmpPath: string;
  statePath: string;
  proc: LaunchedProcess;
  /** The network the parent's NIC sat on: its address goes back. */
  network: string;
}

/**
 * A prepared parent (template `preparing`, its VM `running`) frozen and retired: the template `freezing` and the
 * parent `paused` for the cut, then — the parent never runs again — its QEMU exited (`stopped`), its address
 * returned and its VM record dropped. What is left to do is the seal.
 */
export async function freezeParent(deps: VmDeps, name: string, parent: ParentToFreeze, actor: Actor): Promise<FreezeResult> {
  await transition(deps.db, 'templates', name, 'preparing', 'freezing', actor);
  await transition(deps.db, 'vms', name, 'running', 'paused', actor);
  const cut = await cutTemplate(parent.qmpPath, parent.statePath, parent.proc);
  await markProcessExited(deps.db, name);
  await transition(deps.db, 'vms', name, 'paused', 'stopped', actor);
  await detachVm(deps.db, parent.network, name, hereHost(deps));
  await removeVmCgroup(deps.home.root, name);
  await deleteVm(deps.db, name);
  return cut;
}
