import { actorFor, waitForExit } from '../host/index.js';
import { GuestAgentClient, QmpClient, terminateProcess } from '../qemu/index.js';
import type { Actor } from '../state/index.js';
import { currentProcess, markProcessExited, requireVm, transition, type ProcessRow, type VmRow } from '../store/index.js';
import { getVmReconciled } from './lifecycle.js';
import { assertVmHere, type VmDeps } from './vm-deps.js';

export interface StopOptions {
  /** How long the guest may take to power off before QEMU is told to quit. @default 60_000 */
  timeoutMs?: number;
}

/**
 * How often the power-off request is repeated while the guest still runs. A request can be lost in a guest that
 * is still booting — the agent that answered the boot may be vmfork-guest with qemu-ga not up yet, and an ACPI
 * power button pressed before systemd-logind listens goes nowhere — so a stop right after a boot would otherwise
 * wait out its whole timeout. Asking again is harmless: a shutdown already under way takes no second one.
 */
const ASK_AGAIN_MS = 5_000;

/** Asks the guest to power off until QEMU exits or `timeoutMs` ends; whether it exited. */
async function powerOff(proc: ProcessRow, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await askGuestToPowerOff(proc);
    const left = deadline - Date.now();
    if (await waitForExit(proc.pid, proc.start_time, Math.max(0, Math.min(ASK_AGAIN_MS, left)))) return true;
    if (left <= ASK_AGAIN_MS) return false;
  }
}

/**
 * Stops a VM cleanly: the guest is asked to power off (agent, then ACPI; again every few seconds), QEMU exits by
 * itself; past the timeout QEMU is told to quit, then killed. The overlay is kept.
 */
export async function stopVm(deps: VmDeps, name: string, options: StopOptions = {}): Promise<VmRow> {
  const vm = await getVmReconciled(deps, name);
  assertVmHere(deps, vm);
  if (vm.state === 'stopped') return vm;
  const actor = await actorFor('stop');
  await transition(deps.db, 'vms', name, vm.state, 'stopping', actor);
  const proc = await currentProcess(deps.db, name);
  if (proc) {
    if (!(await powerOff(proc, options.timeoutMs ?? 60_000))) {
      deps.log.warn({ vm: name }, 'guest did not power off in time; quitting QEMU');
      await quitQemu(proc.qmp_path);
      if (!(await waitForExit(proc.pid, proc.start_time, 5_000))) {
        await terminateProcess(proc.pid, proc.start_time, { graceMs: 2_000 });
      }
    }
    await markProcessExited(deps.db, name);
  }
  await transition(deps.db, 'vms', name, 'stopping', 'stopped', actor);
  return requireVm(deps.db, name);
}

/** Heal of a stop whose process died: QEMU is made to exit (it may be half-way through a power-off), then stopped. */
export async function finishStop(deps: VmDeps, vm: VmRow, actor: Actor): Promise<string> {
  const proc = await currentProcess(deps.db, vm.name);
  if (proc) {
    await terminateProcess(proc.pid, proc.start_time, { graceMs: 5_000 });
    await markProcessExited(deps.db, vm.name);
  }
  await transition(deps.db, 'vms', vm.name, 'stopping', 'stopped', actor);
  return `stop finished: ${proc ? `QEMU ${proc.pid} ended` : 'QEMU had exited'}, VM stopped`;
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
