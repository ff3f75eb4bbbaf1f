import { VmforkError } from '../errors.js';
import { actorFor } from '../host/index.js';
import { leaseOfVm, plugLease } from '../network/index.js';
import { decodeVmSpec } from '../spec/index.js';
import { currentProcess, requireTemplate, requireVm, transition, type VmRow } from '../store/index.js';
import { readyTemplate } from '../template/index.js';
import { killVmQemu, startVmProcess, vmPaths, type VmDeps } from '../vm/index.js';
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
  if ((row.state !== 'registered' && row.state !== 'warm') || row.role !== 'child' || !row.template_name) {
    throw new VmforkError('VMFORK_VM_STATE', `VM ${name} is ${row.state}; only a registered child is forked on power-on`, { details: { vm: name, state: row.state, allowed: ['registered', 'warm'] } });
  }
  const template = readyTemplate(await requireTemplate(deps.db, row.template_name));
  const { lease, paths, spec } = await reservedOf(deps, row);
  const reserved: ReservedChild = { name, lease, paths, spec };
  const actor = await actorFor('fork');
  await transition(deps.db, 'vms', name, row.state, 'forking', actor);
  if (row.state === 'warm') {
    // kept warm by its pool: its QEMU waits at -incoming defer; one that died is rolled back by the fork as any failure
    const proc = await currentProcess(deps.db, name);
    if (proc) reserved.warm = { pid: proc.pid, startTime: proc.start_time };
  }
  return forkChild(deps, template, reserved, actor, { registered: true, ...(options.customize ? { customize: options.customize } : {}), ...(options.signal ? { signal: options.signal } : {}) });
}

async function reservedOf(deps: VmDeps, row: VmRow): Promise<Omit<ReservedChild, 'name'>> {
  const lease = await leaseOfVm(deps.db, row.name);
  if (!lease) throw new VmforkError('VMFORK_VM_STATE', `registered child ${row.name} holds no address lease`, { details: { vm: row.name } });
  return { lease, paths: vmPaths(deps.home.vms, row.name), spec: decodeVmSpec(row.spec_json) };
}

/**
 * Keeps a pool's registered child warm: its tap and QEMU (its own overlays, MAC and address) launched at
 * `-incoming defer`, then `registered` → `warm`; a fork that takes it only resumes. Runs in its pool's queue, as
 * every fork of a registered child does, so no fork starts on it meanwhile. A launch that fails leaves it
 * registered (its QEMU stopped).
 */
export async function warmRegistered(deps: VmDeps, name: string): Promise<void> {
  const row = await requireVm(deps.db, name);
  if (row.state !== 'registered' || row.role !== 'child') {
    throw new VmforkError('VMFORK_VM_STATE', `VM ${name} is ${row.state}; only a registered child is kept warm`, { details: { vm: name, state: row.state, allowed: ['registered'] } });
  }
  const { lease, paths, spec } = await reservedOf(deps, row);
  await plugLease(lease);
  await startVmProcess(deps, name, spec, paths, { netns: lease.netns });
  try {
    await transition(deps.db, 'vms', name, 'registered', 'warm', await actorFor('warm'));
  } catch (err) {
    await killVmQemu(deps, row, 500).catch(() => undefined);
    throw err;
  }
}
