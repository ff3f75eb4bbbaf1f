import { VmforkError } from '../errors.js';
import { GuestAgentClient } from '../qemu/guest-agent-client.js';
import { terminateProcess, type LaunchedProcess } from '../qemu/qemu-process.js';
import { markProcessExited } from '../store/processes-repo.js';
import type { VmRow } from '../store/schema.js';
import { updateVm } from '../store/vms-repo.js';
import { readGuestIdentity, type GuestIdentity } from './guest-identity.js';
import { getVmReconciled } from './lifecycle.js';
import type { VmDeps } from './vm-deps.js';
import { vmPaths } from './vm-paths.js';
import { startVmProcess } from './vm-process.js';
import { parseVmSpec } from './vm-spec.js';
import { vmStateMachine, type VmState } from './vm-state.js';

/**
 * Boots a stopped (or failed) cold-booted VM again from its own overlay, and waits for its agent. Forked children
 * are refused: they run without a kernel or bootloader of their own — destroy and fork them again instead.
 */
export async function startVm(deps: VmDeps, name: string, options: { agentTimeoutMs?: number } = {}): Promise<{ vm: VmRow; identity: GuestIdentity; secondsToAgent: number }> {
  const vm = await getVmReconciled(deps, name);
  if (vm.role !== 'vm') {
    throw new VmforkError('VMFORK_VM_STATE', `${name} is a ${vm.role === 'child' ? 'forked child (it has no boot loader; fork a new one)' : vm.role}; only cold-booted VMs can be started again`, {
      details: { vm: name, role: vm.role },
    });
  }
  vmStateMachine.assertTransition(vm.state as VmState, 'starting', name);
  const spec = parseVmSpec(JSON.parse(vm.spec_json));
  await updateVm(deps.db, name, { state: 'starting', last_error: null });
  let launched: LaunchedProcess | undefined;
  let agent: GuestAgentClient | undefined;
  try {
    const t0 = performance.now();
    launched = await startVmProcess(deps, name, spec, vmPaths(deps.home.vms, name));
    agent = await GuestAgentClient.waitReady(spec.agentSocket ?? '', { timeoutMs: options.agentTimeoutMs ?? 300_000 });
    const secondsToAgent = (performance.now() - t0) / 1000;
    const identity = await readGuestIdentity(agent);
    await updateVm(deps.db, name, { state: 'running' });
    return { vm: { ...vm, state: 'running' }, identity, secondsToAgent };
  } catch (err) {
    if (launched) {
      await terminateProcess(launched.pid, launched.startTime, { graceMs: 2000 }).catch(() => undefined);
      await markProcessExited(deps.db, name);
    }
    await updateVm(deps.db, name, { state: 'failed', last_error: (err as Error).message });
    throw err;
  } finally {
    agent?.close();
  }
}
