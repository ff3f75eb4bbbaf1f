import { buildQemuArgv, launchQemu, type LaunchedProcess } from '../qemu/index.js';
import type { VmSpec } from '../spec/index.js';
import { recordProcess } from '../store/index.js';
import { startSerialLogger } from './serial-logger.js';
import { confineVm } from './vm-confine.js';
import type { VmDeps } from './vm-deps.js';
import type { VmPaths } from './vm-paths.js';

/**
 * Launches QEMU for a VM record and records pid + start time at once, so that any later vmfork process (or this
 * one after a crash) can find, adopt or kill it.
 */
export async function startVmProcess(deps: VmDeps, name: string, spec: VmSpec, paths: VmPaths, options: { netns?: string } = {}): Promise<LaunchedProcess> {
  const confined = await confineVm(deps, name, spec, paths.dir);
  const argv = [...buildQemuArgv(spec), ...confined.argv];
  // recorded the moment the process exists, not once QEMU greets: a kill in between must not orphan it
  const record = async (p: LaunchedProcess): Promise<void> => {
    await recordProcess(deps.db, {
      vm_name: name,
      pid: p.pid,
      start_time: p.startTime,
      qmp_path: paths.qmp,
      agent_path: spec.agentSocket ?? null,
      pidfile: paths.pidfile,
      argv_json: JSON.stringify(argv),
      started_at: new Date().toISOString(),
      exited_at: null,
    });
    // with QEMU, not once it greets: a booting guest writes its first lines at once (and a viewer may watch them)
    if (spec.serialSocket && spec.serialLog) await startSerialLogger({ socket: spec.serialSocket, log: spec.serialLog, console: paths.consoleSocket, qemuPid: p.pid, logger: deps.log });
  };
  const cgroup = { scope: deps.home.root, vm: name, shape: spec };
  const launched = await launchQemu({
    argv,
    stderrLog: paths.stderrLog,
    qmpSocket: paths.qmp,
    onSpawn: record,
    cgroup,
    ...(options.netns ? { netns: options.netns } : {}),
    // only a QEMU waiting for its state gets it (a record may still name the state it once loaded)
    ...(spec.incomingState && spec.incoming === 'defer' ? { incomingState: spec.incomingState } : {}),
  });
  deps.log.info({ vm: name, pid: launched.pid, netns: options.netns, uid: confined.identity?.uid, cgroup: launched.cgroup?.why }, 'qemu launched');
  return launched;
}
