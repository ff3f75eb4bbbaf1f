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
  /** The caller's per-child customization (a pool's phase 2) done, when there was one. */
  customizedMs?: number;
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
 * Per-child customization after identity (a pool's phase 2: hooks, machine password), run on the child's agent
 * before it is `running`: a throw fails the child like any other step. What it returns is recorded on the VM.
 */
export type ChildCustomizer = (agent: GuestAgentClient, child: { name: string; ip: string; mac: string }) => Promise<{ secretHash?: string } | void>;

export interface ForkChildOptions {
  customize?: ChildCustomizer;
  /** The child was pre-registered (overlays made, state `registered`): only its tap and QEMU remain to start. */
  registered?: boolean;
}

/** The overlays of a reserved child, one per template disk, made before it is forked or registered. */
async function makeOverlays(t: ReadyTemplate, child: ReservedChild): Promise<void> {
  await mkdir(child.paths.dir, { recursive: true });
  for (const { id, file } of templateDisks(t.record)) await createOverlay(file.path, diskFile(child.paths.dir, id), { backingFormat: 'qcow2' });
}

/**
 * Pre-registers a reserved child (a pool's on-demand child beyond `min`): its overlays are made and its name, MAC
 * and address stay reserved; it is powered off (`registered`) until powered on, which forks it.
 */
export async function registerChild(deps: VmDeps, t: ReadyTemplate, child: ReservedChild, actor: Actor): Promise<void> {
  try {
    await makeOverlays(t, child);
    await transition(deps.db, 'vms', child.name, 'creating', 'registered', actor);
  } catch (err) {
    await rollbackVm(deps, child.name, actor, err);
    throw withContext(err, `child ${child.name}`, { fallback: 'VMFORK_FORK_FAILED' });
  }
}

/**
 * Forks one reserved child: tap → overlay on each template disk → QEMU (-incoming defer) in the network's namespace
 * → resume the template's frozen state (src/qemu/freeze-resume.ts) → agent → identity (src/identity/) → the
 * caller's customization, if any. Any failure rolls back this child only (process, overlays, tap, address, record)
 * and reports QEMU's stderr tail; if this process dies instead, the next vmfork command rolls it back.
 */
export async function forkChild(deps: VmDeps, t: ReadyTemplate, child: ReservedChild, actor: Actor, options: ForkChildOptions = {}): Promise<ForkedChild> {
  const { db } = deps;
  const { name, lease, paths, spec } = child;
  const t0 = performance.now();
  const ms = (): number => Math.round((performance.now() - t0) * 10) / 10;
  const timings: Partial<ForkTimings> = {};
  let launched: LaunchedProcess | undefined;
  let agent: GuestAgentClient | undefined;
  try {
    await plugLease(lease);
    if (!options.registered) await makeOverlays(t, child);
    await transition(db, 'vms', name, options.registered ? 'registered' : 'creating', 'forking', actor);
    launched = await startVmProcess(deps, name, spec, paths, { netns: lease.netns });
    timings.qmpMs = ms();
    await resumeFromFile(paths.qmp, t.record.files.state.path, { loaded: () => (timings.loadedMs = ms()), running: () => (timings.runningMs = ms()) });
    agent = await GuestAgentClient.connect(paths.agent, { timeoutMs: 5_000 });
    await agent.ping({ timeoutMs: 30_000 });
    timings.agentMs = ms();
    const machineId = newMachineId();
    const report = await applyIdentity(agent, { hostname: name, mac: lease.mac, machineId, ipv4: { address: lease.ip, prefix: lease.prefix, gateway: lease.gateway } });
    timings.readyMs = ms();
    const extra = (await options.customize?.(agent, { name, ip: lease.ip, mac: lease.mac })) ?? {};
    if (options.customize) timings.customizedMs = ms();
    const facts = { machineId, sshHostKeyFingerprints: report.sshHostKeyFingerprints, ip: lease.ip, mac: lease.mac, bootId: report.guest.bootId };
    await transition(db, 'vms', name, 'forking', 'running', actor, { facts_json: JSON.stringify(facts), ...(extra.secretHash ? { secret_hash: extra.secretHash } : {}) });
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
