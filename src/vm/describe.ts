import { currentProcess, type VmRow } from '../store/index.js';
import { getVmReconciled } from './lifecycle.js';
import type { VmDeps } from './vm-deps.js';
import { vmPathsIn } from './vm-paths.js';

/** The fields `vm list` shows for every VM (and `vm show` first); the spec is read as stored. */
export function vmSummary(vm: VmRow): Record<string, unknown> {
  const spec = JSON.parse(vm.spec_json) as { memoryMiB?: number; cpus?: number; accel?: string };
  return {
    name: vm.name,
    state: vm.state,
    role: vm.role,
    image: vm.image_name,
    host: vm.host_id,
    accel: spec.accel,
    memoryMiB: spec.memoryMiB,
    cpus: spec.cpus,
    createdAt: vm.created_at,
    lastError: vm.last_error,
  };
}

/** One VM: its summary, spec, current QEMU process and files (`vm show`). */
export async function showVm(deps: VmDeps, name: string): Promise<Record<string, unknown>> {
  const row = await getVmReconciled(deps, name);
  const proc = await currentProcess(deps.db, name);
  const paths = vmPathsIn(row.dir);
  return {
    ...vmSummary(row),
    spec: JSON.parse(row.spec_json) as unknown,
    process: proc ? { pid: proc.pid, startTime: proc.start_time, qmp: proc.qmp_path, agent: proc.agent_path, startedAt: proc.started_at } : null,
    files: { dir: paths.dir, disk: paths.disk, serialLog: paths.serialLog, stderrLog: paths.stderrLog },
  };
}
