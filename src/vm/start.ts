import { VmforkError } from '../errors.js';
import { actorFor } from '../host/index.js';
import { leaseOfVm, plugLease } from '../network/index.js';
import { GuestAgentClient, terminateProcess, type LaunchedProcess } from '../qemu/index.js';
import { decodeVmSpec, parseVmSpec, type VmSpec } from '../spec/index.js';
import { imageBootSource } from './image-boot.js';
import type { Actor } from '../state/index.js';
import { currentProcess, markProcessExited, requireVm, transition, type VmRow } from '../store/index.js';
import { readGuestIdentity, type GuestIdentity } from './guest-facts.js';
import { getVmReconciled } from './lifecycle.js';
import { assertVmHere, type VmDeps } from './vm-deps.js';
import { vmPathsIn } from './vm-paths.js';
import { startVmProcess } from './vm-process.js';

/**
 * Boots a stopped (or failed) cold-booted VM again from its own overlay, and waits for its agent. Forked children
 * are refused: they run without a kernel or bootloader of their own — destroy and fork them again instead.
 */
export async function startVm(deps: VmDeps, name: string, options: { agentTimeoutMs?: number; allowChild?: boolean } = {}): Promise<{ vm: VmRow; identity: GuestIdentity; secondsToAgent: number }> {
  const vm = await getVmReconciled(deps, name);
  assertVmHere(deps, vm);
  if (vm.role !== 'vm' && !(vm.role === 'child' && options.allowChild)) {
    throw new VmforkError('VMFORK_VM_STATE', `${name} is a ${vm.role === 'child' ? 'forked child (it has no boot loader; fork a new one)' : vm.role}; only cold-booted VMs can be started again`, {
      details: { vm: name, role: vm.role },
    });
  }
  const spec = vm.role === 'child' ? await coldChildSpec(deps, vm) : decodeVmSpec(vm.spec_json);
  const actor = await actorFor('start');
  // a child records the spec it boots with: a checkpoint or suspend of it must restore into the same devices and
  // memory it runs with, not those of the fork it once was
  await transition(deps.db, 'vms', name, vm.state, 'starting', actor, { last_error: null, ...(vm.role === 'child' ? { spec_json: JSON.stringify(spec) } : {}) });
  let launched: LaunchedProcess | undefined;
  let agent: GuestAgentClient | undefined;
  try {
    const t0 = performance.now();
    // a child's NIC is a tap on its network's bridge, inside the namespace: made again (a host reboot, a teardown of
    // the tap) and QEMU launched in there — outside, `ifname=vtN` would make a stray tap in the host's namespace
    const lease = await leaseOfVm(deps.db, name);
    if (lease) await plugLease(lease);
    launched = await startVmProcess(deps, name, spec, vmPathsIn(vm.dir), lease ? { netns: lease.netns } : {});
    agent = await GuestAgentClient.waitReady(spec.agentSocket ?? '', { timeoutMs: options.agentTimeoutMs ?? 300_000 });
    const secondsToAgent = (performance.now() - t0) / 1000;
    const identity = await readGuestIdentity(agent);
    await transition(deps.db, 'vms', name, 'starting', 'running', actor);
    return { vm: await requireVm(deps.db, name), identity, secondsToAgent };
  } catch (err) {
    if (launched) {
      await terminateProcess(launched.pid, launched.startTime, { graceMs: 2000 }).catch(() => undefined);
      await markProcessExited(deps.db, name);
    }
    await transition(deps.db, 'vms', name, 'starting', 'failed', actor, { last_error: (err as Error).message });
    throw err;
  } finally {
    agent?.close();
  }
}

/**
 * A forked child booted cold from its own overlays (a persistent pool desktop powered on again): the same disks,
 * NIC and channels, but its own anonymous RAM instead of the template's file, no incoming migration, and the
 * image's kernel — a child has no bootloader of its own. Its identity is on its disks; its addresses are set again
 * by the caller (they live in the kernel, not on disk).
 */
async function coldChildSpec(deps: VmDeps, vm: VmRow): Promise<VmSpec> {
  const forked = decodeVmSpec(vm.spec_json);
  if (!vm.image_name) throw new VmforkError('VMFORK_VM_STATE', `child ${vm.name} records no image to take a kernel from`, { details: { vm: vm.name } });
  const source = await imageBootSource(deps.db, vm.image_name, { screen: forked.vga !== undefined });
  const { incoming: _incoming, incomingState: _incomingState, memory: _memory, kernel: _kernel, ...rest } = forked;
  return parseVmSpec({ ...rest, memory: { kind: 'anonymous' }, ...source.kernel });
}

/** Heal of a start whose process died: its QEMU (if any) is stopped and the VM marked failed, to be started again. */
export async function abandonStart(deps: VmDeps, vm: VmRow, actor: Actor): Promise<string> {
  const proc = await currentProcess(deps.db, vm.name);
  if (proc) {
    await terminateProcess(proc.pid, proc.start_time, { graceMs: 2_000 });
    await markProcessExited(deps.db, vm.name);
  }
  await transition(deps.db, 'vms', vm.name, 'starting', 'failed', actor, { last_error: 'interrupted while starting (its vmfork process died)' });
  return `start abandoned: ${proc ? `QEMU ${proc.pid} stopped, ` : ''}VM failed (vmfork vm start ${vm.name} to try again)`;
}
