import { rm } from 'node:fs/promises';
import { VmforkError } from '../errors.js';
import { terminateProcess } from '../qemu/qemu-process.js';
import { currentProcess, markProcessExited } from '../store/processes-repo.js';
import type { TemplateRow } from '../store/schema.js';
import { deleteTemplateRow, listTemplates, requireTemplate, templateChildren, updateTemplate } from '../store/templates-repo.js';
import { listLeases } from '../store/networks-repo.js';
import { deleteVm, getVm } from '../store/vms-repo.js';
import { detachVm } from '../network/attach.js';
import { reconcileVm } from '../vm/lifecycle.js';
import type { VmDeps } from '../vm/vm-deps.js';
import { checkFile } from './template-files.js';
import { readyTemplate } from './template-record.js';
import { TEMPLATE_BUSY_STATES, templateStateMachine, type TemplateState } from './template-state.js';

/**
 * A template left in a busy state by a crashed `template create` (its parent QEMU gone) becomes `failed`, so
 * that `template rm` can clean it up. Runs on every read.
 */
export async function reconcileTemplate(deps: VmDeps, row: TemplateRow): Promise<TemplateRow> {
  if (!TEMPLATE_BUSY_STATES.includes(row.state as TemplateState)) return row;
  const parent = await getVm(deps.db, row.name);
  if (parent && (await reconcileVm(deps, parent)).state === 'starting') return row;
  if (parent?.state === 'running' || parent?.state === 'paused') return row;
  const why = `interrupted while ${row.state} (the creating process or the parent QEMU died)`;
  templateStateMachine.assertTransition(row.state as TemplateState, 'failed', row.name);
  await updateTemplate(deps.db, row.name, { state: 'failed', last_error: why });
  return { ...row, state: 'failed', last_error: why };
}

export async function listTemplatesReconciled(deps: VmDeps): Promise<TemplateRow[]> {
  return Promise.all((await listTemplates(deps.db)).map((r) => reconcileTemplate(deps, r)));
}

/**
 * Removes a template: refused while children exist (their RAM and disks are backed by its files). A template still
 * being created is refused too, unless `force`: the escape hatch after the creating process was killed while its
 * parent QEMU lives on (vmfork cannot tell a live creator from a dead one).
 */
export async function removeTemplate(deps: VmDeps, name: string, options: { force?: boolean } = {}): Promise<void> {
  const row = await reconcileTemplate(deps, await requireTemplate(deps.db, name));
  const children = await templateChildren(deps.db, name);
  if (children.length) {
    throw new VmforkError('VMFORK_TEMPLATE_IN_USE', `template ${name} has ${children.length} child(ren): ${children.join(', ')}; destroy them first`, {
      details: { template: name, children },
    });
  }
  if (TEMPLATE_BUSY_STATES.includes(row.state as TemplateState) && !options.force) {
    throw new VmforkError('VMFORK_TEMPLATE_NOT_READY', `template ${name} is still being created (${row.state}); if its creator was killed, use --force`);
  }
  templateStateMachine.assertTransition(row.state as TemplateState, 'deleting', name);
  await updateTemplate(deps.db, name, { state: 'deleting' });
  // leftovers of an interrupted creation: the parent's process, record and lease
  const proc = await currentProcess(deps.db, name);
  if (proc) {
    await terminateProcess(proc.pid, proc.start_time, { graceMs: 1000 });
    await markProcessExited(deps.db, name);
  }
  for (const lease of (await listLeases(deps.db)).filter((l) => l.vm_name === name)) await detachVm(deps.db, lease.network_name, name);
  if ((await getVm(deps.db, name))?.role === 'template') await deleteVm(deps.db, name);
  await rm(row.dir, { recursive: true, force: true });
  await deleteTemplateRow(deps.db, name);
}

export interface TemplateFileReport {
  role: string;
  path: string;
  ok: boolean;
  problem?: string;
}

/** Re-hashes every template file (`vmfork template verify`). */
export async function verifyTemplate(deps: VmDeps, name: string): Promise<TemplateFileReport[]> {
  const t = readyTemplate(await requireTemplate(deps.db, name));
  const out: TemplateFileReport[] = [];
  for (const [role, rec] of Object.entries(t.record.files)) {
    const r = await checkFile(rec, { full: true });
    out.push(r.ok ? { role, path: rec.path, ok: true } : { role, path: rec.path, ok: false, problem: r.problem });
  }
  return out;
}
