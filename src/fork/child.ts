import { mkdir, readFile } from 'node:fs/promises';
import { renameVmCgroupOf } from '../host/index.js';
import type { IdentityReport } from '../identity/index.js';
import { plugLease } from '../network/index.js';
import { createOverlay, receivePostcopy, resumeFromFile, type GuestAgentClient, type LaunchedProcess } from '../qemu/index.js';
import { VmforkError, withContext } from '../errors.js';
import type { Duplex } from 'node:stream';
import type { Actor } from '../state/index.js';
import { transition } from '../store/index.js';
import { forkPathOf, templateDisks, type ForkPath, type ReadyTemplate } from '../template/index.js';
import { diskFile, rollbackVm, startVmProcess, type VmDeps } from '../vm/index.js';
import { ChildChannels, identifyChild } from './child-identity.js';
import type { ReservedChild } from './plan.js';
import { faultPoint } from '../util/index.js';

/** Milliseconds from the start of this child's fork. */
export interface ForkTimings {
  /** QEMU started and greeting on QMP. */
  qmpMs: number;
  /** Device state loaded (status `paused`). */
  loadedMs: number;
  /** `cont` done: the guest runs again at the template's instruction. */
  runningMs: number;
  /** The guest answers: vmfork-guest's HELLO (agent path) or qemu-ga's ping (script path). */
  agentMs: number;
  /** Identity applied and verified: the child is ready for use. */
  readyMs: number;
  /** Agent path: the service kicks that follow the REPORT judged (off the critical path: after ready). */
  kickedMs?: number;
  /** The caller's per-child customization (a pool's phase 2) done, when there was one. */
  customizedMs?: number;
}

/** A fork's time to ready as a pool counts it: to its customization (phase 2) when it had one, else to its identity. */
export function readyMsOf(t: Pick<ForkTimings, 'readyMs' | 'customizedMs'>): number {
  return Math.round(t.customizedMs ?? t.readyMs);
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
  /** How the child got its identity: its template's path. */
  forkPath: ForkPath;
  /** The child took a warm process (only migrate-incoming + cont were left to do). */
  fromWarm: boolean;
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
  /**
   * A cancelled task: checked between the child's steps (launch, resume, identity, customization); the child is
   * then rolled back like a failed one, so a cancel waits for at most the step under way.
   */
  signal?: AbortSignal;
  /**
   * The child was pre-registered (overlays made) and the caller has claimed it (`registered` → `forking`, as this
   * process): only its tap and QEMU remain to start.
   */
  registered?: boolean;
  /**
   * Agent path: wait for the service kicks the agent runs after its REPORT (one `systemctl --no-block`, ~0.2-0.8 s
   * of guest time under TCG) and judge them like the script's unit jobs before the child is `running`. `false`
   * leaves them to the guest: the child is handed out at ready, and the agent keeps its KICKED answer for the next
   * connection (which skips it). @default true
   */
  awaitKicks?: boolean;
  /**
   * A lazy child (src/fork/lazy.ts): its overlays are made over the source host's disks (read through local NBD
   * relays) and its state arrives by postcopy from the source host's memory server instead of a local file.
   */
  lazy?: LazySource;
}

/** Where a lazy child's disks and memory come from: another host, reached through this host's agent. */
export interface LazySource {
  /** Per template disk id, the backing file name its overlay reads through (`nbd+unix:///…`). */
  backing: Record<string, string>;
  /** A stream to the source's memory server, joined to the child's incoming socket. */
  connect(): Promise<Duplex>;
}

/** The overlays of a reserved child, one per template disk, made before it is forked, registered or warmed. */
export async function makeOverlays(t: ReadyTemplate, child: ReservedChild, lazy?: LazySource): Promise<void> {
  await mkdir(child.paths.dir, { recursive: true });
  for (const { id, file } of templateDisks(t.record)) {
    const backing = lazy?.backing[id];
    if (lazy && !backing) throw new VmforkError('VMFORK_FORK_FAILED', `lazy child ${child.name}: no source for disk ${id}`, { details: { child: child.name, disk: id } });
    // over NBD: a raw view of the source's chain, copied on read, in an image without subclusters (QEMU 7.2 asserts)
    if (backing) await createOverlay(backing, diskFile(child.paths.dir, id), { backingFormat: 'raw', subclusters: false });
    else await createOverlay(file.path, diskFile(child.paths.dir, id), { backingFormat: 'qcow2' });
  }
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
    const leftAlone = await rollbackVm(deps, child.name, actor, err);
    throw withContext(err, `child ${child.name}`, { fallback: 'VMFORK_FORK_FAILED', ...(leftAlone ? { suffix: `\n${leftAlone}` } : {}) });
  }
}

/**
 * Forks one reserved child: tap → overlay on each template disk → QEMU (-incoming defer) in the network's namespace
 * — or a warm process that already has all three — → the guest's channel (vmfork-guest's, connected before `cont`,
 * on the agent path) → resume the template's frozen state (src/qemu/freeze-resume.ts) → identity on the template's
 * path (src/identity/: CONFIG through vmfork-guest, or the script through qemu-ga; same checks) → the caller's
 * customization, if any, while the agent's service kicks finish. Any failure rolls back this child only (process,
 * overlays, tap, address, record) and reports QEMU's stderr tail; if this process dies instead, the next vmfork
 * command rolls it back.
 */
export async function forkChild(deps: VmDeps, t: ReadyTemplate, child: ReservedChild, actor: Actor, options: ForkChildOptions = {}): Promise<ForkedChild> {
  const { db } = deps;
  const { name, lease, paths, spec } = child;
  const t0 = performance.now();
  const ms = (): number => Math.round((performance.now() - t0) * 10) / 10;
  const timings: Partial<ForkTimings> = {};
  let launched: LaunchedProcess | undefined;
  let channels: ChildChannels | undefined;
  // a warm process has its tap, overlays and QEMU already, and the fork's plan moved it to `forking`
  const launch = async (): Promise<LaunchedProcess> => {
    await plugLease(lease);
    if (!options.registered) {
      await makeOverlays(t, child, options.lazy);
      await transition(db, 'vms', name, 'creating', 'forking', actor);
    }
    return startVmProcess(deps, name, spec, paths, { netns: lease.netns });
  };
  try {
    const step = (): void => options.signal?.throwIfAborted();
    step();
    launched = child.warm ?? (await launch());
    if (child.warm) await renameVmCgroupOf(deps.home.root, child.warm.pid, name);
    const { pid } = launched;
    faultPoint('fork.launched');
    step();
    timings.qmpMs = ms();
    channels = await ChildChannels.beforeCont(t, spec);
    if (options.lazy) {
      const lazy = options.lazy;
      await receivePostcopy(paths.qmp, () => lazy.connect(), { running: () => (timings.loadedMs = timings.runningMs = ms()) });
    } else await resumeFromFile(paths.qmp, { loaded: () => (timings.loadedMs = ms()), running: () => (timings.runningMs = ms()) });
    await channels.greet(t);
    timings.agentMs = ms();
    faultPoint('fork.resumed');
    step();
    const identity = await identifyChild(t, channels, name, lease, deps.log);
    timings.readyMs = ms();
    faultPoint('fork.identity');
    step();
    // the customization (qemu-ga) runs while the agent's service kicks finish: neither waits for the other
    const open = channels;
    const customized = async (): Promise<{ secretHash?: string }> => {
      if (!options.customize) return {};
      const r = await options.customize(await open.qga(), { name, ip: lease.ip, mac: lease.mac });
      timings.customizedMs = ms();
      return r ?? {};
    };
    const kicked = async (): Promise<IdentityReport> => {
      if (!identity.kicks || options.awaitKicks === false) return identity.report;
      const r = await identity.kicks();
      timings.kickedMs = ms();
      return r;
    };
    const [extra, report] = await Promise.all([customized(), kicked()]);
    faultPoint('fork.customized');
    const facts = { machineId: identity.machineId, sshHostKeyFingerprints: report.sshHostKeyFingerprints, ip: lease.ip, mac: lease.mac, bootId: report.guest.bootId };
    // when and how fast this fork made it ready, whatever ran it (a converge, a claim, a refresh; any host): the console shows both
    const readyMs = readyMsOf({ readyMs: timings.readyMs ?? ms(), ...(timings.customizedMs === undefined ? {} : { customizedMs: timings.customizedMs }) });
    await transition(db, 'vms', name, 'forking', 'running', actor, { facts_json: JSON.stringify(facts), forked_at: new Date().toISOString(), ready_ms: readyMs, ...(extra.secretHash ? { secret_hash: extra.secretHash } : {}) });
    const forkPath = forkPathOf(t.record);
    const where = { name, ip: lease.ip, mac: lease.mac, tap: lease.tap, netns: lease.netns, pid };
    return { ...where, forkPath, fromWarm: child.warm !== undefined, timings: timings as ForkTimings, identity: { machineId: identity.machineId, report } };
  } catch (err) {
    channels?.close();
    channels = undefined;
    const stderrTail = (await readFile(paths.stderrLog, 'utf8').catch(() => '')).trim().split('\n').slice(-8).join('\n');
    deps.log.error({ child: name, err, stderrTail }, 'fork failed; rolling back the child');
    const leftAlone = await rollbackVm(deps, name, actor, err, launched);
    throw withContext(err, `child ${name}`, {
      fallback: 'VMFORK_FORK_FAILED',
      suffix: `${leftAlone ? `\n${leftAlone}` : ''}${stderrTail ? `\n--- QEMU stderr ---\n${stderrTail}` : ''}`,
      details: { child: name, stderrTail },
    });
  } finally {
    channels?.close();
  }
}
