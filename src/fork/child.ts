import { mkdir, readFile } from 'node:fs/promises';
import { withContext } from '../errors.js';
import { applyIdentity, newMachineId, type IdentityReport } from '../identity/index.js';
import { plugLease } from '../network/index.js';
import { createOverlay, GuestAgentClient, resumeFromFile, type LaunchedProcess } from '../qemu/index.js';
import type { Actor } from '../state/index.js';
import { transition } from '../store/index.js';
import { templateDisks, type ReadyTemplate } from '../template/index.js';
import { diskFile, rollbackVm, startVmProcess, type VmDeps } from '../vm/index.js';
import type { ReservedChild } from './plan.js';

/** Milliseconds from the start of this child's fork. */
export interface ForkTimings {
  /** QEMU started and greeting on QMP. */
  qmpMs: number;
  /** Device state loaded (status `paused`). */
  loadedMs: number;
  /** `cont` done: the guest runs again at the template's instruction. */
  runningMs: number;
  /** Guest agent answers. */
  agentMs: number;
  /** Identity applied and verified: the child is ready for use. */
  readyMs: number;
}

export interface ChildIdentityResult {
  machineId: string;
  report: IdentityReport;
}

export interface ForkedChild {
  name: string;
  ip: string;
  mac: string;
  tap: string;
  netns: string;
  pid: number;
  timings: ForkTimings;
  identity: ChildIdentityResult;
}

/**
 * Forks one reserved child: tap → overlay on the template disk → QEMU (-incoming defer) in the network's namespace
 * → resume the template's frozen state (src/qemu/freeze-resume.ts) → agent → identity (src/identity/). Any failure
 * rolls back this child only (process, overlay, tap, address, record) and reports QEMU's stderr tail; if this
 * process dies instead, the next vmfork command rolls it back.
 */
export async function forkChild(deps: VmDeps, t: ReadyTemplate, child: ReservedChild, actor: Actor): Promise<ForkedChild> {
  const { db } = deps;
  const { name, lease, paths, spec } = child;
  const t0 = performance.now();
  const ms = (): number => Math.round((performance.now() - t0) * 10) / 10;
  const timings: Partial<ForkTimings> = {};
  let launched: LaunchedProcess | undefined;
  let agent: GuestAgentClient | undefined;
  try {
    await plugLease(lease);
    await mkdir(paths.dir, { recursive: true });
    for (const { id, file } of templateDisks(t.record)) await createOverlay(file.path, diskFile(paths.dir, id), { backingFormat: 'qcow2' });
    await transition(db, 'vms', name, 'creating', 'forking', actor);
    launched = await startVmProcess(deps, name, spec, paths, { netns: lease.netns });
    timings.qmpMs = ms();
    await resumeFromFile(paths.qmp, t.record.files.state.path, { loaded: () => (timings.loadedMs = ms()), running: () => (timings.runningMs = ms()) });
    agent = await GuestAgentClient.connect(paths.agent, { timeoutMs: 5_000 });
    await agent.ping({ timeoutMs: 30_000 });
    timings.agentMs = ms();
    const machineId = newMachineId();
    const report = await applyIdentity(agent, { hostname: name, mac: lease.mac, machineId, ipv4: { address: lease.ip, prefix: lease.prefix, gateway: lease.gateway } });
    timings.readyMs = ms();
    await transition(db, 'vms', name, 'forking', 'running', actor);
    return { name, ip: lease.ip, mac: lease.mac, tap: lease.tap, netns: lease.netns, pid: launched.pid, timings: timings as ForkTimings, identity: { machineId, report } };
  } catch (err) {
    agent?.close();
    agent = undefined;
    const stderrTail = (await readFile(paths.stderrLog, 'utf8').catch(() => '')).trim().split('\n').slice(-8).join('\n');
    deps.log.error({ child: name, err, stderrTail }, 'fork failed; rolling back the child');
    await rollbackVm(deps, name, actor, err, launched);
    throw withContext(err, `child ${name}`, {
      fallback: 'VMFORK_FORK_FAILED',
      suffix: stderrTail ? `\n--- QEMU stderr ---\n${stderrTail}` : '',
      details: { child: name, stderrTail },
    });
  } finally {
    agent?.close();
  }
}
