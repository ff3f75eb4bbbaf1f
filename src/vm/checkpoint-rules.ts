import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { VmforkError } from '../errors.js';
import type { VmRole, VmState } from '../state/index.js';

/** A checkpoint is cut from a running guest: its file systems are frozen through its agent and its CPUs stopped. */
export const CHECKPOINT_FROM: readonly VmState[] = ['running'];
/**
 * A revert replaces the VM's QEMU by one resumed from the checkpoint: from a running VM (its QEMU is stopped first),
 * or from one left stopped or failed (a revert interrupted halfway is simply run again).
 */
export const REVERT_FROM: readonly VmState[] = ['running', 'stopped', 'failed'];

// a label names a directory inside the VM's: no slash, no dot-only names, nothing a shell or URL must quote
const LABEL = /^[a-z0-9][a-z0-9._-]{0,62}$/i;

/** A label given by the user, checked before anything is touched. */
export function checkLabel(label: string): string {
  if (!LABEL.test(label)) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `checkpoint label "${label}" must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit`, {
      details: { label },
    });
  }
  return label;
}

/**
 * The label a checkpoint gets when none is given: its UTC time to the second (`ckpt-20261203-165501`), with `-2`,
 * `-3`, … when the VM already has one from that second.
 */
export function defaultLabel(now: Date, taken: ReadonlySet<string>): string {
  const base = `ckpt-${now.toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-')}`;
  if (!taken.has(base)) return base;
  for (let n = 2; ; n++) if (!taken.has(`${base}-${n}`)) return `${base}-${n}`;
}

/**
 * Roles that are checkpointed: a user's VM and a forked child. A template's parent, a pool's internal clone and a
 * warm process belong to the operation making them; cutting them would change what that operation makes.
 */
export const CHECKPOINT_ROLES: readonly VmRole[] = ['vm', 'child'];

/** The answer of an operation asked of a VM in a state it does not allow: the state table's kind of answer. */
export function assertVmStateFor(op: 'checkpoint' | 'revert', vm: { name: string; state: VmState; role: VmRole }): void {
  if (!CHECKPOINT_ROLES.includes(vm.role)) {
    throw new VmforkError('VMFORK_VM_STATE', `VM ${vm.name} is a ${vm.role}; only VMs and forked children have checkpoints`, { details: { vm: vm.name, role: vm.role, roles: [...CHECKPOINT_ROLES] } });
  }
  const allowed = op === 'checkpoint' ? CHECKPOINT_FROM : REVERT_FROM;
  if (allowed.includes(vm.state)) return;
  throw new VmforkError('VMFORK_VM_STATE', `VM ${vm.name} is ${vm.state}; a ${op} needs it ${allowed.join(' or ')}`, {
    details: { vm: vm.name, state: vm.state, allowed: [...allowed] },
  });
}

/** Where a checkpoint's own files live: inside the VM's directory, so destroy removes them with it. */
export function checkpointDir(vmDir: string, label: string): string {
  return join(vmDir, 'checkpoints', label);
}

/**
 * A new active layer for one disk: a fresh name every time (a checkpoint run again after a crash, or a second
 * revert to the same checkpoint, must never meet a file that is some other layer of the chain).
 */
export function overlayPath(vmDir: string, diskId: string): string {
  return join(vmDir, 'overlays', `${diskId}-${randomBytes(4).toString('hex')}.qcow2`);
}
