import { VmforkError } from '../errors.js';
import { actorFor } from '../host/index.js';
import { adoptProcess, GuestAgentClient } from '../qemu/index.js';
import { LIVE_STATES, vmStateMachine, type VmRole } from '../state/index.js';
import { currentProcess, listVms, markProcessExited, NO_OWNER, requireVm, transition, type VmRow } from '../store/index.js';
import { assertVmHere, hereHost, type VmDeps } from './vm-deps.js';
import { claimVm, destroyRefused } from './vm-owner.js';
import { teardownVm, type Teardown } from './vm-record.js';

/**
 * Brings a resting record in line with reality: a VM recorded running or paused whose QEMU is gone (guest powered
 * off, host rebooted, killed behind vmfork's back) becomes stopped. Transitional states are not touched here: their
 * owner is acting on them, or, when it died, src/heal/ finishes or rolls back its work. Runs on every read.
 */
export async function reconcileVm(deps: VmDeps, vm: VmRow): Promise<VmRow> {
  if (vmStateMachine.isTransitional(vm.state) || !LIVE_STATES.includes(vm.state)) return vm;
  // another host's QEMU is its agent's to check: its pid means nothing on this machine
  if (vm.host_id !== hereHost(deps)) return vm;
  const proc = await currentProcess(deps.db, vm.name);
  // 'unresponsive' is a live QEMU whose monitor is busy: still ours, never mark it gone
  if (proc && ['alive', 'unresponsive'].includes(await adoptProcess({ pid: proc.pid, startTime: proc.start_time, qmpPath: proc.qmp_path }))) return vm;
  if (proc) await markProcessExited(deps.db, vm.name);
  // a warm process never ran a guest: gone, it is simply failed (and refilled by its pool)
  const to = vm.state === 'warm' ? 'failed' : 'stopped';
  const why = vm.state === 'warm' ? 'the warm QEMU process exited' : 'QEMU exited while running (guest powered off, or the process was killed)';
  try {
    await transition(deps.db, 'vms', vm.name, vm.state, to, await actorFor('stop'), { last_error: why });
  } catch {
    // another process moved it first: show what it made of it
    return requireVm(deps.db, vm.name);
  }
  return { ...vm, state: to, last_error: why, ...NO_OWNER };
}

export async function getVmReconciled(deps: VmDeps, name: string): Promise<VmRow> {
  return reconcileVm(deps, await requireVm(deps.db, name));
}

export async function listVmsReconciled(deps: VmDeps, filter: { role?: VmRole; template?: string } = {}): Promise<VmRow[]> {
  const rows = await listVms(deps.db, filter);
  return Promise.all(rows.map((r) => reconcileVm(deps, r)));
}

/**
 * Destroys a VM: kills its QEMU (only if pid AND start time still match), releases its taps and addresses,
 * removes its directory and its record. A VM in a transitional state that another live process owns (forking,
 * starting, another destroy) is refused with the state table's answer (VMFORK_VM_STATE, the states destroy is
 * allowed from); one whose owner died is taken over and destroyed, as the next vmfork command's heal would.
 */
export async function destroyVm(deps: VmDeps, name: string): Promise<Teardown> {
  const vm = await requireVm(deps.db, name);
  assertVmHere(deps, vm);
  const actor = await actorFor('destroy');
  const claim = await claimVm(deps.db, vm, actor);
  if (claim.kind === 'busy') throw destroyRefused(vm, claim);
  await transition(deps.db, 'vms', name, vm.state, 'destroying', actor);
  return teardownVm(deps, vm);
}

/** Connects to a running VM's guest agent; the caller closes it. */
export async function connectAgent(deps: VmDeps, name: string): Promise<GuestAgentClient> {
  const vm = await getVmReconciled(deps, name);
  if (vm.state !== 'running') {
    throw new VmforkError('VMFORK_VM_STATE', `VM ${name} is ${vm.state}; it must be running`, { details: { vm: name, state: vm.state } });
  }
  const proc = await currentProcess(deps.db, name);
  if (!proc?.agent_path) throw new VmforkError('VMFORK_AGENT_UNAVAILABLE', `VM ${name} has no guest agent channel`);
  return GuestAgentClient.connect(proc.agent_path, { timeoutMs: 5_000 });
}
