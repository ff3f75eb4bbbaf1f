import { VmforkError, withContext } from '../errors.js';
import { actorFor, waitForExit } from '../host/index.js';
import { currentProcess, markProcessExited, transition } from '../store/index.js';
import { bootVm, destroyVm, diskFile, vmPaths, type VmDeps } from '../vm/index.js';
import { dataDisks, diskScript, parseFacts, type DiskLayout } from './disks.js';
import { runCommonScripts, type CommonScript } from './scripts.js';
import { CloneSession } from './session.js';
import { faultPoint } from '../util/index.js';

/** Phase 1 of a pool: everything common to its children that may need reboots, applied ONCE to an internal clone. */
export interface Phase1Spec {
  /** The internal clone's VM name. */
  clone: string;
  image: string;
  /** @default '512M' */
  memory?: string;
  /** @default 1 */
  cpus?: number;
  layout: DiskLayout;
  common: readonly CommonScript[];
  /** Installed as root's authorized keys (the same for every child). */
  sshAuthorizedKeys?: readonly string[];
  /** @default 300_000 */
  agentTimeoutMs?: number;
  /**
   * Leave the clone running (agent up) instead of powering it off: the traditional path a benchmark compares with,
   * where every VM gets phase 1 itself and is then used directly. @default false
   */
  keepRunning?: boolean;
  /**
   * A cancelled task: the boot's agent wait, the script or reboot in progress and every later part end at once, and
   * the internal clone is removed as after a failure.
   */
  signal?: AbortSignal;
}

/** Where phase 1 reports its steps (percent of the whole phase) and what happened (a task's events). */
export interface Phase1Progress {
  step(name: string, percent: number): void;
  event(message: string): void;
}

export interface Phase1Result {
  clone: string;
  /** The powered-off clone's disks, system disk first: what the replica copies. */
  disks: { id: string; path: string }[];
  /** Boots after the first one: asked for by scripts (exit 100) or done by the guest itself. */
  reboots: number;
  /** Where /home, /tmp and swap ended up, as the guest reports them. */
  mounts: { home: string; tmp: string; swap: string };
  ms: { boot: number; disks: number; scripts: number; powerOff: number; total: number };
}

const QUIET: Phase1Progress = { step: () => undefined, event: () => undefined };

/**
 * Runs phase 1: a linked clone of the image with its data disks (user-data for persistent pools, disposable) boots;
 * through the agent the disks are partitioned, formatted and mounted (fstab by UUID: /home on the user-data disk,
 * swap and /tmp on the disposable one), root's authorized keys are installed, then the pool's common scripts run
 * in order, rebooting whenever one asks (exit 100) or the guest reboots on its own; finally the clone is powered
 * off cleanly. On failure the clone is removed whole and the error carries the failing script's stderr tail.
 */
export async function runPhase1(deps: VmDeps, spec: Phase1Spec, progress: Phase1Progress = QUIET): Promise<Phase1Result> {
  const t0 = performance.now();
  const agentTimeoutMs = spec.agentTimeoutMs ?? 300_000;
  progress.step('boot internal clone', 5);
  const boot = await bootVm(deps, {
    image: spec.image,
    name: spec.clone,
    memory: spec.memory ?? '512M',
    cpus: spec.cpus ?? 1,
    role: 'clone',
    noShutdown: true,
    dataDisks: dataDisks(spec.layout),
    agentTimeoutMs,
    signal: spec.signal,
  });
  progress.event(`internal clone ${spec.clone} booted in ${boot.secondsToAgent.toFixed(1)} s`);
  faultPoint('phase1.clone-booted');
  const tBoot = performance.now();
  const paths = vmPaths(deps.home.vms, spec.clone);
  let session: CloneSession | undefined;
  try {
    spec.signal?.throwIfAborted();
    session = await CloneSession.open(paths.qmp, paths.agent, agentTimeoutMs, spec.signal);
    progress.step('partition, format and mount disks', 20);
    const disks = await session.sh(diskScript(spec.layout), { timeoutMs: 180_000 });
    if (disks.exitCode !== 0) throw scriptError('laying out the disks', disks.exitCode, disks.stderr.toString());
    const mounts = parseFacts(disks.stdout.toString());
    progress.event(`disks: /home on ${mounts.home ?? '?'}, /tmp on ${mounts.tmp ?? '?'}, swap ${mounts.swap ?? '?'}`);
    if (spec.sshAuthorizedKeys?.length) await installAuthorizedKeys(session, spec.sshAuthorizedKeys);
    faultPoint('phase1.disks');
    const tDisks = performance.now();
    await runCommonScripts(session, spec.common, progress);
    const tScripts = performance.now();
    const reboots = session.reboots;
    if (spec.keepRunning) {
      session.close();
    } else {
      progress.step('power off the internal clone', 85);
      await powerOffClone(deps, spec.clone, session);
      faultPoint('phase1.powered-off');
    }
    session = undefined;
    const tOff = performance.now();
    const ids = ['disk0', ...dataDisks(spec.layout).map((d) => d.id)];
    progress.event(`phase 1 done: ${reboots} reboot(s), ${ms(t0, tOff)} ms`);
    return {
      clone: spec.clone,
      disks: ids.map((id) => ({ id, path: diskFile(paths.dir, id) })),
      reboots,
      mounts: { home: mounts.home ?? '', tmp: mounts.tmp ?? '', swap: mounts.swap ?? '' },
      ms: { boot: ms(t0, tBoot), disks: ms(tBoot, tDisks), scripts: ms(tDisks, tScripts), powerOff: ms(tScripts, tOff), total: ms(t0, tOff) },
    };
  } catch (err) {
    session?.close();
    await destroyVm(deps, spec.clone).catch((e: unknown) => deps.log.error({ clone: spec.clone, err: e }, 'removing the internal clone failed; heal finishes it'));
    throw withContext(spec.signal?.aborted ? spec.signal.reason : err, `phase 1 on internal clone ${spec.clone}`, { fallback: 'VMFORK_CUSTOMIZE_FAILED' });
  }
}

/** root's authorized_keys, given on stdin (one key per line), so no key lands on a command line. */
async function installAuthorizedKeys(session: CloneSession, keys: readonly string[]): Promise<void> {
  const script = 'set -eu; umask 077; mkdir -p /root/.ssh; cat > /root/.ssh/authorized_keys; chmod 600 /root/.ssh/authorized_keys; sync';
  const r = await session.sh(script, { timeoutMs: 60_000, input: `${keys.join('\n')}\n` });
  if (r.exitCode !== 0) throw scriptError('installing the SSH authorized keys', r.exitCode, r.stderr.toString());
}

/** Clean power-off, then the clone's record goes starting → stopping → stopped once its QEMU has exited. */
async function powerOffClone(deps: VmDeps, clone: string, session: CloneSession): Promise<void> {
  const actor = await actorFor('boot');
  await transition(deps.db, 'vms', clone, 'starting', 'stopping', actor);
  const proc = await currentProcess(deps.db, clone);
  try {
    await session.powerOff();
  } finally {
    session.close();
  }
  if (proc && !(await waitForExit(proc.pid, proc.start_time, 30_000))) {
    throw new VmforkError('VMFORK_CUSTOMIZE_FAILED', `the internal clone's QEMU (pid ${proc.pid}) did not exit after the guest powered off`);
  }
  await markProcessExited(deps.db, clone);
  await transition(deps.db, 'vms', clone, 'stopping', 'stopped', actor);
}

const ms = (a: number, b: number): number => Math.round(b - a);

function scriptError(what: string, exitCode: number, stderr: string): VmforkError {
  const tail = stderr.trim().split('\n').slice(-10).join('\n');
  return new VmforkError('VMFORK_CUSTOMIZE_FAILED', `${what} exited ${exitCode}${tail ? `:\n${tail}` : ''}`, { details: { exitCode, stderrTail: tail } });
}


