import { VmforkError } from '../errors.js';
import { actorFor, ownerAlive } from '../host/index.js';
import { TEMPLATE_BUSY_STATES } from '../state/index.js';
import { getSetting, listTemplates as listTemplateRows, requireTemplate, templateChildren, templatesOn, templateWarmVms, type Db, type TemplateRow } from '../store/index.js';
import { hereHost, type VmDeps } from '../vm/index.js';
import { dismantleTemplate, warmTargetKey } from './dismantle.js';
import { checkFile } from './files.js';
import { assertTemplateHere, forkPathOf, readyTemplate, templateFileList, templateRecordOf, type TemplateRecord } from './record.js';

/**
 * What `template list` and `template show` print for a template (JSON fields are a contract). `forkPath` says how
 * children get their identity (`agent`: vmfork-guest, `script`: the identity script through qemu-ga); `warm` counts
 * the QEMU processes waiting for a fork, `warmTarget` how many its refill keeps. The FORK_ME nonce is left out of
 * the record shown: it is in every child's memory anyway, but nothing needs it printed.
 */
export function templateView(row: TemplateRow, children: string[], warm: { count: number; target: number } = { count: 0, target: 0 }): Record<string, unknown> {
  const record = templateRecordOf(row);
  return {
    name: row.name,
    state: row.state,
    image: row.image_name,
    host: row.host_id,
    parent: row.parent_name,
    children: children.length,
    forkPath: record ? forkPathOf(record) : null,
    warm: warm.count,
    warmTarget: warm.target,
    memoryMiB: record?.memoryMiB,
    accel: record?.accel,
    coldBootSeconds: record?.coldBootSeconds,
    createdAt: row.created_at,
    lastError: row.last_error,
    ...(row.owner_pid !== null ? { owner: { pid: row.owner_pid, op: row.owner_op } } : {}),
    record: record ? shownRecord(record) : record,
  };
}

function shownRecord(record: TemplateRecord): TemplateRecord {
  if (!record.agent) return record;
  const { nonce: _nonce, ...agent } = record.agent;
  return { ...record, agent: agent as TemplateRecord['agent'] };
}

/** Warm processes waiting (as recorded; `vm list` reconciles them with reality) and the refill target. */
async function warmOf(db: Db, template: string): Promise<{ count: number; target: number; names: string[] }> {
  const names = (await templateWarmVms(db, template)).filter((r) => r.state === 'warm').map((r) => r.name);
  return { count: names.length, target: Number((await getSetting(db, warmTargetKey(template))) ?? '0'), names };
}

/** Every template with its children count (`template list`; the JSON leaves out the record). */
export async function listTemplates(deps: VmDeps): Promise<Record<string, unknown>[]> {
  const rows = await listTemplateRows(deps.db);
  return Promise.all(rows.map(async (r) => templateView(r, await templateChildren(deps.db, r.name), await warmOf(deps.db, r.name))));
}

/** One template with its record, the names of its children and of its warm processes (`template show`). */
export async function showTemplate(deps: VmDeps, name: string): Promise<Record<string, unknown>> {
  const row = await requireTemplate(deps.db, name);
  const children = await templateChildren(deps.db, name);
  const warm = await warmOf(deps.db, name);
  return { ...templateView(row, children, warm), childNames: children, warmNames: warm.names };
}

/**
 * Removes a template: refused while children exist (their RAM and disks are backed by its files) or templates
 * stand on it (`--from-vm`: their disks overlay its disks); its warm
 * processes are no children and go with it. A template still
 * being created by a live process is refused too, unless `force` (the escape hatch for a creator that hangs): the
 * removal then kills its parent QEMU. A creation whose process died needs no force: the next command heals it.
 */
export async function removeTemplate(deps: VmDeps, name: string, options: { force?: boolean } = {}): Promise<void> {
  const row = await requireTemplate(deps.db, name);
  assertTemplateHere(hereHost(deps), row);
  const children = await templateChildren(deps.db, name);
  if (children.length) {
    throw new VmforkError('VMFORK_TEMPLATE_IN_USE', `template ${name} has ${children.length} child(ren): ${children.join(', ')}; destroy them first`, {
      details: { template: name, children },
    });
  }
  // a template made from one of its children overlays its disks (the template tree): that one goes first
  const standing = await templatesOn(deps.db, name);
  if (standing.length) {
    throw new VmforkError('VMFORK_TEMPLATE_IN_USE', `template(s) ${standing.join(', ')} stand on template ${name} (made from its children; their disks overlay its disks); remove them first`, {
      details: { template: name, templates: standing },
    });
  }
  const busy = TEMPLATE_BUSY_STATES.includes(row.state) || row.state === 'deleting';
  if (busy && !options.force && (await ownerAlive({ pid: row.owner_pid, startTime: row.owner_start_time, boot: row.owner_boot }))) {
    throw new VmforkError('VMFORK_TEMPLATE_NOT_READY', `template ${name} is ${row.state} by vmfork pid ${row.owner_pid}; if that process hangs, use --force`, {
      details: { template: name, state: row.state, ownerPid: row.owner_pid },
    });
  }
  await dismantleTemplate(deps, row, await actorFor('template-rm'));
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
  for (const [role, rec] of templateFileList(t.record)) {
    const r = await checkFile(rec, { full: true });
    out.push(r.ok ? { role, path: rec.path, ok: true } : { role, path: rec.path, ok: false, problem: r.problem });
  }
  return out;
}
