import { VmforkError } from '../errors.js';
import { actorFor } from '../host/index.js';
import { leasesFor } from '../network/index.js';
import { decodeVmSpec } from '../spec/index.js';
import { listLeases, requireTemplate, requireVm, transition } from '../store/index.js';
import { readyTemplate } from '../template/index.js';
import { vmPaths, type VmDeps } from '../vm/index.js';
import { forkChild, type ChildCustomizer, type ForkedChild } from './child.js';
import type { ReservedChild } from './plan.js';

/**
 * Forks a pre-registered child (powering it on): its name, MAC, address and overlays were reserved when it was
 * registered; only its tap, QEMU, the resume and its identity remain. The child is first claimed, `registered` →
 * `forking` as a compare-and-set: of two power-ons racing for it exactly one wins, and the loser gets
 * VMFORK_VM_STATE before it has touched anything, so it never rolls back the winner's child. A failure after the
 * claim rolls the child back whole.
 */
export async function forkRegistered(deps: VmDeps, name: string, options: { customize?: ChildCustomizer; signal?: AbortSignal } = {}): Promise<ForkedChild> {
  const row = await requireVm(deps.db, name);
  if (row.state !== 'registered' || !row.template_name) {
    throw new VmforkError('VMFORK_VM_STATE', `VM ${name} is ${row.state}; only a registered child is forked on power-on`, { details: { vm: name, state: row.state } });
  }
  const template = readyTemplate(await requireTemplate(deps.db, row.template_name));
  const held = (await listLeases(deps.db)).find((l) => l.vm_name === name);
  const lease = held ? (await leasesFor(deps.db, held.network_name)).find((l) => l.vmName === name) : undefined;
  if (!lease) throw new VmforkError('VMFORK_VM_STATE', `registered child ${name} holds no address lease`, { details: { vm: name } });
  const reserved: ReservedChild = { name, lease, paths: vmPaths(deps.home.vms, name), spec: decodeVmSpec(row.spec_json) };
  const actor = await actorFor('fork');
  await transition(deps.db, 'vms', name, 'registered', 'forking', actor);
  return forkChild(deps, template, reserved, actor, { registered: true, ...(options.customize ? { customize: options.customize } : {}), ...(options.signal ? { signal: options.signal } : {}) });
}
