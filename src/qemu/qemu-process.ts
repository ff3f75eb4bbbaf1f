import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { lstat, open, readFile, stat, unlink } from 'node:fs/promises';
import { isVmforkError, VmforkError } from '../errors.js';
import { QEMU_PACKAGES, QEMU_SYSTEM_BINARY, isSameProcess, placeInCgroup, type CgroupPlacement, type VmCgroupRequest, readProcStat, readStartTime, waitForExit } from '../host/index.js';
import { waitUntil } from '../util/index.js';
import { QmpClient } from './qmp-client.js';

/**
 * QEMU runs detached from vmfork: its own session (no controlling terminal, no signal from a Ctrl-C of the CLI),
 * stdio to a log file, not waited for. A VM thus outlives the command that started it and any restart of the
 * control plane, which finds it again from its record (pid + start time + QMP socket): see `adoptProcess`.
 */

export interface LaunchOptions {
  /** Arguments after the program name (from `buildQemuArgv`). */
  argv: readonly string[];
  /** The `-qmp` unix socket in `argv`: launch is complete when QEMU greets on it. */
  qmpSocket: string;
  /** QEMU's stdout and stderr are appended here; a failed start quotes its tail. */
  stderrLog: string;
  /** @default 'qemu-system-x86_64' */
  binary?: string;
  /** Run inside this network namespace (`ip netns exec` execs into QEMU, so the pid stays QEMU's). */
  netns?: string;
  cwd?: string;
  /** Handed to QEMU as fd 3 (`INCOMING_STATE_FD`): the state file it loads at `migrate-incoming fd:3`. */
  incomingState?: string;
  /** How long QEMU may take to greet on QMP. @default 30000 */
  readyTimeoutMs?: number;
  /**
   * Called as soon as the process exists, before QEMU greets: the caller records pid + start time right then, so
   * that a vmfork killed while QEMU starts leaves a process the next command can find and stop.
   */
  onSpawn?: (proc: LaunchedProcess) => Promise<void>;
  /** The VM's cgroup (memory, CPU weight, pids: docs/cgroups.md); QEMU is moved into it right after the spawn. */
  cgroup?: VmCgroupRequest;
}

export interface LaunchedProcess {
  pid: number;
  /** Clock ticks after boot (/proc/PID/stat field 22); record it with the pid. */
  startTime: number;
  /** Where the process was confined, or why not (a VM runs without a cgroup where cgroups cannot be used). */
  cgroup?: CgroupPlacement;
}

/**
 * Starts QEMU detached and resolves once its QMP monitor greets — QEMU greets only from its main loop, after every
 * device was created, so a bad disk or device option surfaces here. Exiting earlier (or never greeting) is
 * VMFORK_VM_START_FAILED carrying the stderr tail; a never-greeting QEMU is killed first.
 */
export async function launchQemu(options: LaunchOptions): Promise<LaunchedProcess> {
  const binary = options.binary ?? QEMU_SYSTEM_BINARY;
  await removeStaleSocket(options.qmpSocket);
  const logOffset = await stat(options.stderrLog).then((s) => s.size, () => 0);
  const [cmd, args] = options.netns ? ['ip', ['netns', 'exec', options.netns, binary, ...options.argv]] : [binary, [...options.argv]];
  const logFd = openSync(options.stderrLog, 'a');
  const stateFd = options.incomingState === undefined ? undefined : openSync(options.incomingState, 'r');
  let exit: string | undefined;
  let child: ChildProcess;
  try {
    // stdio[3] is fd 3 in QEMU: `ip netns exec` passes it on as it is
    child = spawn(cmd, args, { cwd: options.cwd, detached: true, stdio: ['ignore', logFd, logFd, ...(stateFd === undefined ? [] : [stateFd])] });
  } finally {
    closeSync(logFd); // the child holds its own copy
    if (stateFd !== undefined) closeSync(stateFd);
  }
  child.on('exit', (code, signal) => (exit = signal ? `killed by ${signal}` : `exited with code ${code}`));
  const spawnError = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined));
    child.once('error', resolve);
  });
  if (spawnError) {
    if (spawnError.code === 'ENOENT') {
      throw new VmforkError('VMFORK_QEMU_MISSING', `${cmd} not found on PATH (apt-get install ${QEMU_PACKAGES[binary] ?? 'qemu-system-x86'})`, { cause: spawnError });
    }
    throw new VmforkError('VMFORK_VM_START_FAILED', `cannot run ${cmd}: ${spawnError.message}`, { cause: spawnError });
  }
  child.unref();
  const pid = child.pid as number;
  const startTime = await readStartTime(pid);
  const fail = async (why: string): Promise<never> => {
    const tail = await logTail(options.stderrLog, logOffset);
    throw new VmforkError('VMFORK_VM_START_FAILED', `${binary} ${why}${tail ? `: ${tail}` : ''}`, {
      details: { pid, stderrLog: options.stderrLog, stderrTail: tail, netns: options.netns },
    });
  };
  if (startTime === undefined) return fail(exit ?? 'exited at once');
  await options.onSpawn?.({ pid, startTime });
  const cgroup = options.cgroup && (await placeInCgroup(pid, options.cgroup));

  const timeoutMs = options.readyTimeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  const outcome = await waitUntil(
    async () => {
      if (exit) return { exited: exit };
      if (!(await isSocket(options.qmpSocket))) return undefined;
      try {
        const qmp = await QmpClient.connect(options.qmpSocket, { connectTimeoutMs: Math.max(100, deadline - Date.now()) });
        qmp.close();
        return { exited: undefined };
      } catch (err) {
        if (!isVmforkError(err)) throw err;
        // QEMU exiting mid-handshake shows up here first; `exit` is set by the time the next look runs
        return undefined;
      }
    },
    { deadlineMs: timeoutMs, everyMs: 10, what: `QEMU to answer on ${options.qmpSocket}` },
  ).catch(async (err: unknown) => {
    if (!(isVmforkError(err) && err.code === 'VMFORK_TIMEOUT')) throw err;
    await terminateProcess(pid, startTime, { graceMs: 1_000 });
    return fail(`did not answer on ${options.qmpSocket} within ${timeoutMs} ms (killed)`);
  });
  if (outcome.exited !== undefined) return fail(outcome.exited);
  return { pid, startTime, ...(cgroup ? { cgroup } : {}) };
}

/** Reads a pidfile QEMU wrote (`-pidfile`); undefined when it is missing or not (yet) a number. */
export async function readPidfile(path: string): Promise<number | undefined> {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  const pid = Number(text?.trim());
  return text !== undefined && /^\d+$/.test(text.trim()) && pid > 0 ? pid : undefined;
}

/**
 * What became of a recorded QEMU:
 * - `alive`: the same process (pid and start time match) and its QMP monitor answered.
 * - `unresponsive`: the same process, but its QMP socket did not answer — QEMU hung or exiting, or another
 *   client holds the monitor (QEMU serves one QMP client at a time). It still runs: do not treat it as gone.
 * - `gone`: no such process (or a zombie): it exited.
 * - `reused`: the pid now belongs to another process; never signal it.
 */
export type AdoptState = 'alive' | 'unresponsive' | 'gone' | 'reused';

export interface ProcessRecord {
  pid: number;
  startTime: number;
  qmpPath: string;
}

/**
 * Finds a recorded QEMU again after a restart of vmfork. pid + start time decide whether it is still the same
 * process; the pidfile is not consulted, since it names a pid without saying which process.
 */
export async function adoptProcess(record: ProcessRecord, options: { qmpTimeoutMs?: number } = {}): Promise<AdoptState> {
  const stat = await readProcStat(record.pid);
  if (!stat || stat.state === 'Z' || stat.state === 'X') return 'gone';
  if (stat.startTime !== record.startTime) return 'reused';
  try {
    const qmp = await QmpClient.connect(record.qmpPath, { connectTimeoutMs: options.qmpTimeoutMs ?? 2_000 });
    try {
      await qmp.queryStatus({ timeoutMs: options.qmpTimeoutMs ?? 2_000 });
    } finally {
      qmp.close();
    }
    return 'alive';
  } catch (err) {
    if (!isVmforkError(err)) throw err;
    // it may have exited while we knocked
    return (await isSameProcess(record.pid, record.startTime)) ? 'unresponsive' : 'gone';
  }
}

/**
 * - `terminated`: it exited after SIGTERM (QEMU shuts down cleanly on it).
 * - `killed`: it ignored SIGTERM for `graceMs` and was SIGKILLed.
 * - `not-running`: it had already exited, or the pid belongs to another process now (nothing was signalled).
 */
export type TerminateResult = 'terminated' | 'killed' | 'not-running';

/**
 * Stops the process (pid, startTime): SIGTERM, up to `graceMs` to exit, then SIGKILL. Identity is re-checked
 * before each signal, so a pid that was reused is never signalled. Throws VMFORK_INTERNAL when even SIGKILL does
 * not end it within 5 s (a process stuck in uninterruptible I/O).
 */
export async function terminateProcess(pid: number, startTime: number, options: { graceMs?: number } = {}): Promise<TerminateResult> {
  if (!(await signalIfSame(pid, startTime, 'SIGTERM'))) return 'not-running';
  if (await waitForExit(pid, startTime, options.graceMs ?? 10_000)) return 'terminated';
  if (!(await signalIfSame(pid, startTime, 'SIGKILL'))) return 'terminated';
  if (await waitForExit(pid, startTime, 5_000)) return 'killed';
  throw new VmforkError('VMFORK_INTERNAL', `process ${pid} did not exit after SIGKILL`, { details: { pid } });
}

async function signalIfSame(pid: number, startTime: number, signal: NodeJS.Signals): Promise<boolean> {
  // the window between this check and kill() is microseconds; the pid would have to exit and be reused within it
  if (!(await isSameProcess(pid, startTime))) return false;
  try {
    process.kill(pid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

async function removeStaleSocket(path: string): Promise<void> {
  // a socket left by an earlier QEMU would look "ready" at once; QEMU unlinks it before binding anyway
  const s = await lstat(path).catch(() => undefined);
  if (s?.isSocket()) await unlink(path);
}

async function isSocket(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isSocket() ?? false;
}

/** The last lines QEMU wrote to its log during this launch (from `offset`). */
async function logTail(path: string, offset: number, maxBytes = 4096): Promise<string> {
  const fh = await open(path, 'r').catch(() => undefined);
  if (!fh) return '';
  try {
    const size = (await fh.stat()).size;
    const start = Math.max(offset, size - maxBytes);
    const buf = Buffer.alloc(Math.max(0, size - start));
    await fh.read(buf, 0, buf.length, start);
    return buf.toString('utf8').trim().split('\n').slice(-10).join('\n');
  } finally {
    await fh.close();
  }
}
