import { actorFor } from '../host/index.js';
import { adoptProcess, QmpClient } from '../qemu/index.js';
import type { VmState } from '../state/index.js';
import { currentProcess, markProcessExited, transition, vmsOnHost, type VmRow } from '../store/index.js';
import { destroyVm } from './lifecycle.js';
import { hereHost, type VmDeps } from './vm-deps.js';

/** What its own QEMU says a VM is: QMP's run state, for a process that is still the recorded one. */
async function stateFromQemu(qmpPath: string): Promise<VmState> {
  const qmp = await QmpClient.connect(qmpPath, { connectTimeoutMs: 5_000 });
  try {
    const { status } = await qmp.queryStatus({ timeoutMs: 5_000 });
    if (status === 'running') return 'running';
    // a warm process waits for its incoming state
    if (status === 'inmigrate') return 'warm';
    return 'paused';
  } finally {
    qmp.close();
  }
}

/**
 * Run by a host's agent (at its start, and at each heartbeat while any are left): each of its host's VMs that a sweep
 * made `unknown` while the host was lost is looked at where it runs. Its QEMU still the recorded process: it is
 * running, paused or warm again, as QMP says. Gone: stopped (a warm process: failed, and its pool makes another).
 * Each move is a compare-and-set from `unknown`, so a VM someone destroyed meanwhile is left alone. A child its pool
 * replaced meanwhile on another host (`replaced_by`) is destroyed instead.
 */
export async function reconcileUnknownVms(deps: VmDeps): Promise<{ name: string; state: VmState | 'destroyed' }[]> {
  const out: { name: string; state: VmState | 'destroyed' }[] = [];
  const actor = await actorFor('host-back');
  for (const vm of await vmsOnHost(deps.db, hereHost(deps), ['unknown'])) {
    if (vm.replaced_by) {
      // replaced on another host while this one was lost: the fence. It never runs again here (its name, address and
      // identity are another child's now, or were): its QEMU is killed and it is destroyed
      await destroyVm(deps, vm.name);
      out.push({ name: vm.name, state: 'destroyed' });
      continue;
    }
    const to = await verdict(deps, vm).catch(() => (vm.role === 'warm' ? 'failed' : 'stopped') as VmState);
    try {
      await transition(deps.db, 'vms', vm.name, 'unknown', to, actor, { last_error: to === 'stopped' || to === 'failed' ? `its QEMU was gone when host ${vm.host_id} came back` : null });
      out.push({ name: vm.name, state: to });
    } catch {
      // moved meanwhile: not ours to say
    }
  }
  return out;
}

async function verdict(deps: VmDeps, vm: VmRow): Promise<VmState> {
  const proc = await currentProcess(deps.db, vm.name);
  if (proc && ['alive', 'unresponsive'].includes(await adoptProcess({ pid: proc.pid, startTime: proc.start_time, qmpPath: proc.qmp_path }))) {
    return stateFromQemu(proc.qmp_path);
  }
  if (proc) await markProcessExited(deps.db, vm.name);
  return vm.role === 'warm' ? 'failed' : 'stopped';
}
