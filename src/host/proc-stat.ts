import { readdir, readFile } from 'node:fs/promises';
import { VmforkError, isVmforkError } from '../errors.js';
import { waitUntil } from '../util/index.js';

/**
 * Process identity. A pid alone names a process only while it lives: after it exits the kernel hands the number to
 * the next process, and signalling a recorded pid could then kill a stranger. The pair (pid, start time) is unique
 * for the life of the boot, so vmfork records both and compares both before it trusts or signals a pid.
 */

export interface ProcStat {
  /** Single-letter state (R, S, D, Z, …); a zombie (Z) has exited and only waits to be reaped. */
  state: string;
  /** Start time in clock ticks after boot (field 22 of /proc/PID/stat). */
  startTime: number;
}

/**
 * Parses /proc/PID/stat. Field 2 is the command name in parentheses, and it may itself contain spaces and ')'
 * (a process can name itself `a) b`), so the fixed fields are counted from the LAST ')'.
 */
export function parseProcStat(text: string): ProcStat {
  const close = text.lastIndexOf(')');
  // after ") " come field 3 (state), 4, 5, …; field 22 is therefore index 19
  const fields = close < 0 ? [] : text.slice(close + 1).trim().split(/\s+/);
  const state = fields[0];
  const startTime = Number(fields[19]);
  if (!state || !Number.isSafeInteger(startTime)) {
    throw new VmforkError('VMFORK_INTERNAL', `malformed /proc/PID/stat: ${text.slice(0, 120)}`);
  }
  return { state, startTime };
}

/** The stat of `pid`, or undefined when there is no such process. */
export async function readProcStat(pid: number): Promise<ProcStat | undefined> {
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return undefined;
    throw err;
  }
  return parseProcStat(text);
}

/** Start time of `pid` in clock ticks after boot, or undefined when no such process exists. */
export async function readStartTime(pid: number): Promise<number | undefined> {
  return (await readProcStat(pid))?.startTime;
}

/** True when `pid` is still the process that started at `startTime` and has not exited (zombies count as exited). */
export async function isSameProcess(pid: number, startTime: number): Promise<boolean> {
  const stat = await readProcStat(pid);
  return stat !== undefined && stat.startTime === startTime && stat.state !== 'Z' && stat.state !== 'X';
}

/** Polls until the process (pid, startTime) has exited; false when it still runs after `timeoutMs`. */
export async function waitForExit(pid: number, startTime: number, timeoutMs: number, pollMs = 25): Promise<boolean> {
  return waitUntil(async () => !(await isSameProcess(pid, startTime)), { deadlineMs: timeoutMs, everyMs: pollMs, what: `process ${pid} to exit` }).catch(
    (err: unknown) => {
      if (isVmforkError(err) && err.code === 'VMFORK_TIMEOUT') return false;
      throw err;
    },
  );
}

/**
 * Live processes (pid + start time) with `arg` among their command-line arguments, read from /proc. A VM's QMP
 * socket argument names exactly one VM of one data dir: this finds its QEMU even when no record of it was written
 * (its vmfork was killed between starting it and recording it).
 */
export async function processesWithArg(arg: string): Promise<{ pid: number; startTime: number }[]> {
  const out: { pid: number; startTime: number }[] = [];
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.split('\0').includes(arg)) continue;
    const stat = await readProcStat(Number(entry)).catch(() => undefined);
    if (stat && stat.state !== 'Z' && stat.state !== 'X') out.push({ pid: Number(entry), startTime: stat.startTime });
  }
  return out;
}
