import type { Actor } from '../state/index.js';
import { transition, type VmRow } from '../store/index.js';
import { finishStop } from './stop.js';
import { abandonStart } from './start.js';
import type { VmDeps } from './vm-deps.js';
import { describeTeardown, teardownVm } from './vm-record.js';

/**
 * Heal (src/heal/) of a VM whose owning vmfork process died in a transitional state, by what it was doing:
 * - creating it (boot, fork, template parent): rolled back whole — QEMU, taps, leases, overlay, record;
 * - starting it again: its QEMU stopped, the VM failed (it existed before and keeps its disk);
 * - stopping it: the stop is finished;
 * - destroying it: the destroy is finished.
 * The caller has taken the row over (compare-and-set on the dead owner) before calling.
 */
export async function healVm(deps: VmDeps, vm: VmRow, actor: Actor): Promise<string> {
  if (vm.state === 'stopping') return finishStop(deps, vm, actor);
  if (vm.state === 'starting' && vm.owner_op === 'start') return abandonStart(deps, vm, actor);
  if (vm.state !== 'destroying') await transition(deps.db, 'vms', vm.name, vm.state, 'destroying', actor);
  const what = vm.state === 'destroying' ? 'destroy finished' : 'rolled back';
  return `${what}: ${describeTeardown(await teardownVm(deps, vm))}`;
}
