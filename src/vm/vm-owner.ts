import { VmforkError } from '../errors.js';
import { ownerAlive } from '../host/index.js';
import { vmStateMachine, type Actor, type VmState } from '../state/index.js';
import { takeOver, type Db, type VmRow } from '../store/index.js';

/**
 * Who may act on a VM row now, as seen by `actor`'s process:
 * - `mine`: this process owns its transitional state;
 * - `taken-over`: its owner had died and this process took the row over (compare-and-set on the dead owner);
 * - `resting`: no operation owns it (a resting state);
 * - `busy`: a live other process owns it (or another healer took the dead owner's row first).
 */
export type VmOwnership = { kind: 'mine' | 'taken-over' | 'resting' } | { kind: 'busy'; pid: number | null; op: string | null };

/**
 * Settles who owns `vm` before a rollback or destroy touches it: owner = pid + start time, so a pid reused by a
 * stranger counts as dead. A dead owner's row is taken over here, so of two processes cleaning it up one wins.
 */
export async function claimVm(db: Db, vm: VmRow, actor: Actor): Promise<VmOwnership> {
  if (!vmStateMachine.isTransitional(vm.state)) return { kind: 'resting' };
  const { pid, startTime, boot } = actor.owner;
  // a row from before owners named their machine (owner_boot null) is this machine's
  if (vm.owner_pid === pid && vm.owner_start_time === startTime && (vm.owner_boot ?? boot) === boot) return { kind: 'mine' };
  const busy = { kind: 'busy', pid: vm.owner_pid, op: vm.owner_op } as const;
  if (await ownerAlive({ pid: vm.owner_pid, startTime: vm.owner_start_time, boot: vm.owner_boot })) return busy;
  return (await takeOver(db, 'vms', vm.name, vm.state, vm, actor)) ? { kind: 'taken-over' } : busy;
}

/** `forking (vmfork pid 123 is working on it: fork)`: a busy row as users read it. */
export function describeBusy(vm: Pick<VmRow, 'state'>, busy: { pid: number | null; op: string | null }): string {
  return `${vm.state} (vmfork pid ${busy.pid ?? '?'} is working on it${busy.op ? `: ${busy.op}` : ''})`;
}

/**
 * The states a destroy may start from without waiting for anyone, read off the state table: the resting states
 * that may move to `destroying`. A transitional state is destroyable only by its owner, or once its owner died.
 */
export const DESTROYABLE_STATES: readonly VmState[] = vmStateMachine.states.filter((s) => vmStateMachine.canTransition(s, 'destroying') && !vmStateMachine.isTransitional(s));

/** The state table's answer to a destroy of a VM that a live other process is working on (409). */
export function destroyRefused(vm: VmRow, busy: { pid: number | null; op: string | null }): VmforkError {
  const allowed = DESTROYABLE_STATES.join(', ');
  return new VmforkError('VMFORK_VM_STATE', `VM ${vm.name} is ${describeBusy(vm, busy)}; destroy is allowed from ${allowed}, or once that process has exited`, {
    details: { resource: 'VM', name: vm.name, from: vm.state, to: 'destroying', ownerPid: busy.pid, ownerOp: busy.op, allowed: DESTROYABLE_STATES },
  });
}
