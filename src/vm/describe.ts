import type { VmRole } from '../state/index.js';
import { currentProcess, listLeases, type Db, type VmRow } from '../store/index.js';
import { getVmReconciled, listVmsReconciled } from './lifecycle.js';
import type { VmDeps } from './vm-deps.js';
import { vmPathsIn } from './vm-paths.js';

/** The fields every VM view shows (`vm show` first, the API's list); the spec is read as stored. */
export function vmSummary(vm: VmRow): Record<string, unknown> {
  const spec = JSON.parse(vm.spec_json) as { memoryMiB?: number; cpus?: number; accel?: string };
  return {
    name: vm.name,
    state: vm.state,
    role: vm.role,
    image: vm.image_name,
    pool: vm.pool_name,
    host: vm.host_id,
    accel: spec.accel,
    memoryMiB: spec.memoryMiB,
    cpus: spec.cpus,
    createdAt: vm.created_at,
    lastError: vm.last_error,
  };
}

/** Each VM's address (its first lease, the one its identity was given); a VM without one has no entry. */
async function addressesByVm(db: Db): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const l of await listLeases(db)) if (!out.has(l.vm_name)) out.set(l.vm_name, l.ip);
  return out;
}

/** `vm list`: every VM reconciled with its QEMU process, its summary and its address (`ip`, null without one). */
export async function listVmSummaries(deps: VmDeps, filter: { role?: VmRole; template?: string } = {}): Promise<Record<string, unknown>[]> {
  const [rows, ips] = await Promise.all([listVmsReconciled(deps, filter), addressesByVm(deps.db)]);
  return rows.map((r) => ({ ...vmSummary(r), ip: ips.get(r.name) ?? null }));
}

/** One VM: its summary, spec, current QEMU process and files (`vm show`). */
export async function showVm(deps: VmDeps, name: string): Promise<Record<string, unknown>> {
  const row = await getVmReconciled(deps, name);
  const proc = await currentProcess(deps.db, name);
  const paths = vmPathsIn(row.dir);
  const ip = (await addressesByVm(deps.db)).get(name) ?? null;
  return {
    ...vmSummary(row),
    ip,
    spec: JSON.parse(row.spec_json) as unknown,
    process: proc ? { pid: proc.pid, startTime: proc.start_time, qmp: proc.qmp_path, agent: proc.agent_path, startedAt: proc.started_at } : null,
    files: { dir: paths.dir, disk: paths.disk, serialLog: paths.serialLog, stderrLog: paths.stderrLog },
  };
}
