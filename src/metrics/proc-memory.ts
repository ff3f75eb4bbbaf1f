import { readFile } from 'node:fs/promises';
import { isSameProcess } from '../host/index.js';

export interface ProcessMemory {
  residentBytes: number;
  /** Proportional set size; undefined when /proc/PID/smaps_rollup cannot be read (another uid without ptrace access). */
  pssBytes: number | undefined;
}

/** A `Name:  1234 kB` line of a /proc file, in bytes. */
function kbField(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
  return m?.[1] === undefined ? undefined : Number(m[1]) * 1024;
}

async function readOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Memory of the process recorded as (pid, start time), or undefined when that process is gone (a pid alone could be
 * a stranger's by now: host/proc-stat.ts). VmRSS counts every page a QEMU has resident, the template's shared
 * pages included in each child; PSS splits those between the children that share them, so summing PSS over a
 * pool gives what the pool really costs.
 */
export async function processMemory(pid: number, startTime: number): Promise<ProcessMemory | undefined> {
  if (!(await isSameProcess(pid, startTime))) return undefined;
  const status = await readOrUndefined(`/proc/${pid}/status`);
  const residentBytes = status === undefined ? undefined : kbField(status, 'VmRSS');
  if (residentBytes === undefined) return undefined;
  const rollup = await readOrUndefined(`/proc/${pid}/smaps_rollup`);
  return { residentBytes, pssBytes: rollup === undefined ? undefined : kbField(rollup, 'Pss') };
}
