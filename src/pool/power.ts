import { VmforkError } from '../errors.js';
import type { ChildProgressState } from '../state/index.js';
import { requirePool, requireVm, setVmClaimed } from '../store/index.js';
import { hereHost, type VmDeps } from '../vm/index.js';
import { destroyAnywhere, onItsHost } from './placed.js';
import { poolCustomizer } from '../customize/index.js';
import { poolSpecOf } from './converge.js';
import { REAL_PARTS, type PoolParts } from './parts.js';

/** What a power operation did, for its task's result. */
export interface PowerResult {
  vm: string;
  /** What the child is now, as its task's per-child progress says it. */
  state: ChildProgressState;
  /**
   * `forked` (a registered child), `resumed` (a suspended persistent child, at the instruction it stopped at),
   * `booted` (a powered-off child with no usable suspend state, from its own disks; `resumeError` says why),
   * `claimed` (a running spare handed out as it is), `suspended` (a persistent child), `stopped`, `refreshed`,
   * `unchanged`.
   */
  action: 'forked' | 'resumed' | 'booted' | 'claimed' | 'suspended' | 'stopped' | 'refreshed' | 'unchanged';
  resumeError?: string;
}

/**
 * Powers a VM on. A pool's registered child is forked (fast: no boot) with the pool's phase 2; a persistent child
 * that was powered off boots from its own disks (its machine state diverged from the template, so it cannot be
 * forked again) and gets its addresses again; a cold-booted VM starts. A pool child powered on is claimed.
 */
export async function powerOn(deps: VmDeps, name: string, parts: PoolParts = REAL_PARTS): Promise<PowerResult> {
  const vm = await requireVm(deps.db, name);
  if (vm.state === 'running') {
    // a running spare is the pool's fastest answer: it is handed out as it is, and the pool forks another spare
    if (!vm.pool_name || vm.claimed_at !== null) return { vm: name, state: vm.state, action: 'unchanged' };
    await setVmClaimed(deps.db, name, true);
    return { vm: name, state: vm.state, action: 'claimed' };
  }
  const spec = vm.pool_name ? poolSpecOf(await requirePool(deps.db, vm.pool_name)) : undefined;
  if (vm.state === 'registered') {
    const customize = spec ? poolCustomizer(spec) : undefined;
    await parts.forkRegistered(deps, name, customize ? { customize } : {});
    if (vm.pool_name) await setVmClaimed(deps.db, name, true);
    return { vm: name, state: 'running', action: 'forked' };
  }
  if (vm.role === 'child' && !vm.pool_name) {
    throw new VmforkError('VMFORK_VM_STATE', `${name} is a forked child outside any pool; destroy it and fork a new one`, { details: { vm: name } });
  }
  // a VM outside any pool on another host of the fleet: started by its agent
  if (!vm.pool_name && vm.host_id !== hereHost(deps)) {
    await onItsHost(deps, vm, { op: 'vm-start', name });
    return { vm: name, state: 'running', action: 'booted' };
  }
  // a suspended persistent child resumes where it was; one whose state is gone or damaged boots, and says so
  const resumed = vm.pool_name && vm.state === 'stopped' ? await parts.resumeVm(deps, name) : undefined;
  if (!resumed?.resumed) await parts.bootStopped(deps, await requireVm(deps.db, name));
  if (vm.pool_name) await setVmClaimed(deps.db, name, true);
  if (resumed?.resumed) return { vm: name, state: 'running', action: 'resumed' };
  return { vm: name, state: 'running', action: 'booted', ...(resumed ? { resumeError: resumed.reason } : {}) };
}

/**
 * Powers a VM off. A persistent pool child is suspended (its RAM and device state to its own file; resumed at
 * power-on); a VM outside any pool shuts down cleanly and keeps its disks; a
 * non-persistent pool child is refreshed: destroyed, and its name registered again on fresh overlays by the pool's
 * next converge (the patent's reset at power-off).
 */
export async function powerOff(deps: VmDeps, name: string, parts: PoolParts = REAL_PARTS): Promise<PowerResult> {
  const vm = await requireVm(deps.db, name);
  const spec = vm.pool_name ? poolSpecOf(await requirePool(deps.db, vm.pool_name)) : undefined;
  if (spec && !spec.persistent) {
    // a placed pool's child on another host is destroyed there by its agent; the converge places its successor
    if (vm.host_id !== hereHost(deps)) await destroyAnywhere(deps, name);
    else await parts.destroyVm(deps, name);
    return { vm: name, state: 'destroyed', action: 'refreshed' };
  }
  if (vm.state === 'stopped' || vm.state === 'registered') return { vm: name, state: vm.state, action: 'unchanged' };
  // a persistent pool child keeps its machine state: suspended to its own file, resumed at power-on without a boot
  const suspend = spec?.persistent === true && vm.state === 'running';
  if (suspend) await parts.suspendVm(deps, name);
  else if (vm.host_id !== hereHost(deps)) await onItsHost(deps, vm, { op: 'vm-stop', name });
  else await parts.stopVm(deps, name);
  if (vm.pool_name) await setVmClaimed(deps.db, name, false);
  return { vm: name, state: 'stopped', action: suspend ? 'suspended' : 'stopped' };
}
