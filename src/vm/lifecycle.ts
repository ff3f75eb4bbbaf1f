import { rm } from 'node:fs/promises';
import { VmforkError } from '../errors.js';
import { GuestAgentClient } from '../qemu/guest-agent-client.js';
import { QmpClient } from '../qemu/qmp-client.js';
import { adoptProcess, terminateProcess, waitForExit } from '../qemu/qemu-process.js';
import { detachVm } from '../network/attach.js';
import { listLeases } from '../store/networks-repo.js';
import { currentProcess, markProcessExited } from '../store/processes-repo.js';
import type { ProcessRow, VmRow } from '../store/schema.js';
import { deleteVm, listVms, requireVm, updateVm } from '../store/vms-repo.js';
import type { VmDeps } from './vm-deps.js';
import { LIVE_STATES, vmStateMachine, type VmState } from './vm-state.js';

async function transition(deps: VmDeps, vm: VmRow, to: VmState, lastError?: string): Promise<VmRow> {
  vmStateMachine.assertTransition(vm.state as VmState, to, vm.name);
  await updateVm(deps.db, vm.name, { state: to, ...(lastError !== undefined ? { last_error: lastError } : {}) });
  return { ...vm, state: to, last_error: lastError ?? vm.last_error };
}

/**
 * Brings a record in line with reality: a VM whose QEMU is gone (guest powered off, host rebooted, vmfork killed
 * mid-operation) is marked stopped — or failed when it died during an operation. Runs on every read, so a crash at
 * any step is recovered the next time anyone looks.
 */
export async function reconcileVm(deps: VmDeps, vm: VmRow): Promise<VmRow> {
  const state = vm.state as VmState;
  if (!LIVE_STATES.includes(state) && state !== 'creating') return vm;
  const proc = await currentProcess(deps.db, vm.name);
  // 'unresponsive' is a live QEMU whose monitor is busy: still ours, never mark it gone
  if (proc && ['alive', 'unresponsive'].includes(await adoptProcess(processRecord(proc)))) return vm;
  if (proc) await markProcessExited(deps.db, vm.name);
  const orderly = state === 'running' || state === 'paused' || state === 'stopping';
  if (orderly) return transition(deps, vm, 'stopped', state === 'stopping' ? undefined : 'QEMU exited while running (guest powered off, or the process was killed)');
  const why = state === 'creating' ? 'interrupted while being created' : `QEMU exited while the VM was ${state}`;
  return transition(deps, vm, 'failed', why);
}

export async function getVmReconciled(deps: VmDeps, name: string): Promise<VmRow> {
  return reconcileVm(deps, await requireVm(deps.db, name));
}

export async function listVmsReconciled(deps: VmDeps, filter: { role?: string } = {}): Promise<VmRow[]> {
  const rows = await listVms(deps.db, filter);
  return Promise.all(rows.map((r) => reconcileVm(deps, r)));
}

function processRecord(p: ProcessRow): { pid: number; startTime: number; qmpPath: string } {
  return { pid: p.pid, startTime: p.start_time, qmpPath: p.qmp_path };
}

export interface StopOptions {
  /** How long the guest may take to power off before QEMU is told to quit. @default 60_000 */
  timeoutMs?: number;
}

/**
 * Stops a VM cleanly: the guest is asked to power off (agent, then ACPI), QEMU exits by itself; past the
 * timeout QEMU is told to quit, then killed. The overlay is kept.
 */
export async function stopVm(deps: VmDeps, name: string, options: StopOptions = {}): Promise<VmRow> {
  let vm = await getVmReconciled(deps, name);
  if (vm.state === 'stopped') return vm;
  vm = await transition(deps, vm, 'stopping');
  const proc = await currentProcess(deps.db, name);
  if (proc) {
    await askGuestToPowerOff(proc);
    if (!(await waitForExit(proc.pid, proc.start_time, options.timeoutMs ?? 60_000))) {
      deps.log.warn({ vm: name }, 'guest did not power off in time; quitting QEMU');
      await quitQemu(proc.qmp_path);
      if (!(await waitForExit(proc.pid, proc.start_time, 5_000))) {
        await terminateProcess(proc.pid, proc.start_time, { graceMs: 2_000 });
      }
    }
    await markProcessExited(deps.db, name);
  }
  return transition(deps, vm, 'stopped');
}

async function askGuestToPowerOff(proc: ProcessRow): Promise<void> {
  if (proc.agent_path) {
    let agent: GuestAgentClient | undefined;
    try {
      agent = await GuestAgentClient.connect(proc.agent_path, { timeoutMs: 2_000 });
      await agent.sync({ timeoutMs: 3_000 });
      await agent.shutdown('powerdown');
      return;
    } catch {
      // no agent (guest hung or still booting): fall back to the ACPI power button
    } finally {
      agent?.close();
    }
  }
  let qmp: QmpClient | undefined;
  try {
    qmp = await QmpClient.connect(proc.qmp_path, { connectTimeoutMs: 2_000 });
    await qmp.execute('system_powerdown');
  } catch {
    // QEMU may already be gone; waitForExit decides
  } finally {
    qmp?.close();
  }
}

async function quitQemu(qmpPath: string): Promise<void> {
  let qmp: QmpClient | undefined;
  try {
    qmp = await QmpClient.connect(qmpPath, { connectTimeoutMs: 2_000 });
    await qmp.quit();
  } catch {
    // terminateProcess follows
  } finally {
    qmp?.close();
  }
}

/**
 * Destroys a VM: kills its QEMU (only if pid AND start time still match), releases its taps and addresses,
 * removes its directory and its record. Safe to run again after a crash halfway.
 */
export async function destroyVm(deps: VmDeps, name: string): Promise<void> {
  let vm = await requireVm(deps.db, name);
  vm = await transition(deps, vm, 'destroying');
  const proc = await currentProcess(deps.db, name);
  if (proc) {
    await terminateProcess(proc.pid, proc.start_time, { graceMs: 1_000 });
    await markProcessExited(deps.db, name);
  }
  // after QEMU is gone: the tap must not be deleted (nor the address reused) while a process still holds it
  for (const lease of (await listLeases(deps.db)).filter((l) => l.vm_name === name)) {
    await detachVm(deps.db, lease.network_name, name);
  }
  await rm(vm.dir, { recursive: true, force: true });
  await deleteVm(deps.db, name);
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
