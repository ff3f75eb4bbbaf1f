import { rm } from 'node:fs/promises';
import { VmforkError } from '../errors.js';
import { actorFor } from '../host/index.js';
import { leaseOfVm } from '../network/index.js';
import { createOverlay } from '../qemu/index.js';
import { requireTemplate, requireVm, transition } from '../store/index.js';
import { readyTemplate, templateDisks } from '../template/index.js';
import { diskFile, forgetCheckpoints, killVmQemu, rollbackVm, vmPaths, type VmDeps } from '../vm/index.js';
import { childSpec } from './child-spec.js';
import type { ChildCustomizer, ForkedChild } from './child.js';
import { forkRegistered } from './registered.js';
import { faultPoint } from '../util/index.js';

/** States a pool child may be refreshed from: whatever its last user left it in. */
const REFRESHABLE = new Set(['running', 'paused', 'stopped', 'failed']);

export interface RefreshOptions {
  customize?: ChildCustomizer;
  signal?: AbortSignal;
}

/**
 * Makes the overlays of `ids` anew over `templateName`'s disks, for a child that is powered off (a persistent
 * child's disposable disk at its release: /tmp and swap start empty, /home and the system disk stay).
 */
export async function resetDisks(deps: VmDeps, name: string, templateName: string, ids: readonly string[]): Promise<string[]> {
  const row = await requireVm(deps.db, name);
  if (row.state !== 'stopped') {
    throw new VmforkError('VMFORK_VM_STATE', `VM ${name} is ${row.state}; its disks are reset only while it is stopped`, { details: { vm: name, state: row.state, allowed: ['stopped'] } });
  }
  const template = readyTemplate(await requireTemplate(deps.db, templateName));
  const paths = vmPaths(deps.home.vms, name);
  const reset: string[] = [];
  // a checkpoint's layers and RAM describe the disks being reset: it goes, and the disks get their first path back
  await forgetCheckpoints(deps, name, { resetDisks: ids });
  for (const { id, file } of templateDisks(template.record).filter((d) => ids.includes(d.id))) {
    await remakeOverlay(file.path, diskFile(paths.dir, id));
    reset.push(id);
  }
  return reset;
}

async function remakeOverlay(backing: string, overlay: string): Promise<void> {
  await rm(overlay, { force: true });
  await createOverlay(backing, overlay, { backingFormat: 'qcow2' });
}

/**
 * Refreshes a pool child (given back by its user): its QEMU is stopped, its overlays are discarded and made anew
 * over `template`'s disks (the pool's current one), and it is forked again — the same name, MAC, address and tap,
 * a new machine-id, SSH host keys, RNG seed and machine password, and nothing its last user wrote.
 *
 * `running` → `refreshing` is a compare-and-set, so two refreshes never meet; `refreshing` → `registered` happens
 * only once the new overlays exist, and forkRegistered takes it from there (rolling the child back whole if the
 * fork fails). A vmfork that dies while `refreshing` leaves a row the next command rolls back (src/heal/), after
 * which the pool's converge registers the name again.
 */
export async function refreshChild(deps: VmDeps, name: string, templateName: string, options: RefreshOptions = {}): Promise<ForkedChild> {
  const row = await requireVm(deps.db, name);
  if (row.role !== 'child' || !row.pool_name || !REFRESHABLE.has(row.state)) {
    throw new VmforkError('VMFORK_VM_STATE', `VM ${name} is ${row.state}${row.pool_name ? '' : ', outside any pool'}; only a pool child that is running, paused, stopped or failed is refreshed`, {
      details: { vm: name, state: row.state, allowed: [...REFRESHABLE] },
    });
  }
  const template = readyTemplate(await requireTemplate(deps.db, templateName));
  const lease = await leaseOfVm(deps.db, name);
  if (!lease) throw new VmforkError('VMFORK_VM_STATE', `child ${name} holds no address lease`, { details: { vm: name } });
  const actor = await actorFor('fork');
  await transition(deps.db, 'vms', name, row.state, 'refreshing', actor);
  try {
    await killVmQemu(deps, row, 500);
    faultPoint('refresh.killed');
    // nothing of the last user survives: its checkpoints (their RAM files and disk layers) go too
    await forgetCheckpoints(deps, name, { resetDisks: templateDisks(template.record).map((d) => d.id) });
    const paths = vmPaths(deps.home.vms, name);
    // the template may be a newer one than the child's (an image push): its spec is derived again from it
    const spec = childSpec(template, name, paths, lease);
    for (const { id, file } of templateDisks(template.record)) await remakeOverlay(file.path, diskFile(paths.dir, id));
    await transition(deps.db, 'vms', name, 'refreshing', 'registered', actor, {
      spec_json: JSON.stringify(spec),
      template_name: template.row.name,
      facts_json: null,
      secret_hash: null,
      last_error: null,
    });
  } catch (err) {
    await rollbackVm(deps, name, actor, err);
    throw err;
  }
  faultPoint('refresh.overlays');
  return forkRegistered(deps, name, options);
}
