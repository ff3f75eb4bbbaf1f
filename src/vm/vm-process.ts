import { buildQemuArgv, launchQemu, type LaunchedProcess } from '../qemu/index.js';
import type { VmSpec } from '../spec/index.js';
import { recordProcess } from '../store/index.js';
import type { VmDeps } from './vm-deps.js';
import type { VmPaths } from './vm-paths.js';

/**
 * Launches QEMU for a VM record and records pid + start time at once, so that any later vmfork process (or this
 * one after a crash) can find, adopt or kill it.
 */
export async function startVmProcess(deps: VmDeps, name: string, spec: VmSpec, paths: VmPaths, options: { netns?: string } = {}): Promise<LaunchedProcess> {
  const argv = buildQemuArgv(spec);
  const launched = await launchQemu({ argv, stderrLog: paths.stderrLog, qmpSocket: paths.qmp, ...(options.netns ? { netns: options.netns } : {}) });
  await recordProcess(deps.db, {
    vm_name: name,
    pid: launched.pid,
    start_time: launched.startTime,
    qmp_path: paths.qmp,
    agent_path: spec.agentSocket ?? null,
    pidfile: paths.pidfile,
    argv_json: JSON.stringify(argv),
    started_at: new Date().toISOString(),
    exited_at: null,
  });
  deps.log.info({ vm: name, pid: launched.pid, netns: options.netns }, 'qemu launched');
  return launched;
}
