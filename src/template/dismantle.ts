import { rm } from 'node:fs/promises';
import { removeVmCgroup } from '../host/index.js';
import { terminateProcess } from '../qemu/index.js';
import { detachVm } from '../network/index.js';
import type { Actor } from '../state/index.js';
import { currentProcess, deleteSetting, deleteTemplateRow, deleteVm, getTemplate, getVm, listLeases, markProcessExited, templateWarmVms, transition, type TemplateRow } from '../store/index.js';
import { stopStrayQemu, teardownVm, type VmDeps } from '../vm/index.js';
import { resumeStrandedChild } from './from-vm-heal.js';

/** The settings key of a template's warm-process target (`vmfork template warm NAME --count K`). */
export function warmTargetKey(template: string): string {
  return `warm-target:${template}`;
}

/**
 * The template's warm processes go with it: each record `destroying`, then torn down (QEMU by pid + start time,
 * tap, address, overlays). A refill still launching one sees the template `deleting` and removes its own.
 */
async function removeWarm(deps: VmDeps, template: string, actor: Actor): Promise<string[]> {
  const done: string[] = [];
  for (const vm of await templateWarmVms(deps.db, template)) {
    if (vm.state !== 'destroying') await transition(deps.db, 'vms', vm.name, vm.state, 'destroying', actor);
    await teardownVm(deps, vm, { graceMs: 500 });
    done.push(vm.name);
  }
  await deleteSetting(deps.db, warmTargetKey(template));
  return done.length ? [`warm process(es) ${done.join(', ')} removed`] : [];
}

/**
 * Removes a template and whatever its creation left: its warm processes, the parent's QEMU (pid + start time
 * checked), its tap and lease, its VM record, the template's files, then the template record. The record goes
 * `deleting` first (owned by the actor), so a dismantle cut short is finished by the next vmfork command. Every step is idempotent.
 * Used by `template rm`, by a failed `template create` rolling itself back, and by heal.
 */
export async function dismantleTemplate(deps: VmDeps, row: TemplateRow, actor: Actor): Promise<string> {
  if (row.state !== 'deleting') await transition(deps.db, 'templates', row.name, row.state, 'deleting', actor);
  const done: string[] = await removeWarm(deps, row.name, actor);
  const proc = await currentProcess(deps.db, row.name);
  if (proc) {
    if ((await terminateProcess(proc.pid, proc.start_time, { graceMs: 1_000 })) !== 'not-running') done.push(`parent QEMU ${proc.pid} stopped`);
    await markProcessExited(deps.db, row.name);
  }
  const stray = await stopStrayQemu(row.dir);
  if (stray !== undefined) done.push(`unrecorded parent QEMU ${stray} stopped`);
  for (const lease of (await listLeases(deps.db)).filter((l) => l.vm_name === row.name)) {
    await detachVm(deps.db, lease.network_name, row.name, row.host_id);
    done.push(`${lease.ip} on ${lease.network_name} (tap ${lease.tap}) released`);
  }
  await removeVmCgroup(deps.home.root, row.name);
  if ((await getVm(deps.db, row.name))?.role === 'template') await deleteVm(deps.db, row.name);
  await rm(row.dir, { recursive: true, force: true });
  await deleteTemplateRow(deps.db, row.name);
  done.push('files and record removed');
  return done.join('; ');
}

/** Heal (src/heal/) of a template whose creating or removing process died: rolled back or removed whole. */
export async function healTemplate(deps: VmDeps, row: TemplateRow, actor: Actor): Promise<string> {
  const what = row.state === 'deleting' ? 'removal finished' : `creation rolled back (it was ${row.state})`;
  const fresh = (await getTemplate(deps.db, row.name)) ?? row;
  // a --from-vm creation cut short while its child stood still: the child runs on first
  const resumed = await resumeStrandedChild(deps, row.name, actor);
  return `${what}: ${resumed ? `${resumed}; ` : ''}${await dismantleTemplate(deps, fresh, actor)}`;
}
