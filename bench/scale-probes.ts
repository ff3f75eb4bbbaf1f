import { readdir, readFile } from 'node:fs/promises';
import { parseSmapsRollup } from './smaps.js';

/** A QEMU process of this run: its VM's name (`-name`) and pid. */
export interface QemuProcess {
  name: string;
  pid: number;
}

/** Pure: the `-name` of a QEMU command line (NUL-separated as in /proc/PID/cmdline) when it names `root`. */
export function qemuNameOf(cmdline: string, root: string): string | undefined {
  const args = cmdline.split('\0');
  if (!args[0]?.includes('qemu-system') || !args.some((a) => a.includes(`${root}/`))) return undefined;
  const i = args.indexOf('-name');
  return i >= 0 ? args[i + 1] : undefined;
}

/** Every QEMU whose command line names the data dir `root`, by VM name. Read from /proc: no API call. */
export async function qemuProcessesOf(root: string): Promise<QemuProcess[]> {
  const out: QemuProcess[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    const name = qemuNameOf(cmdline, root);
    if (name) out.push({ name, pid: Number(entry) });
  }
  return out;
}

/**
 * Pure: utime + stime (clock ticks) from the text of /proc/PID/stat. The command name (field 2) may hold spaces
 * and parentheses, so the fields are counted from the last `)`.
 */
export function cpuTicksOf(statText: string): number {
  const rest = statText.slice(statText.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state): utime and stime are fields 14 and 15
  return Number(rest[11]) + Number(rest[12]);
}

/** USER_HZ: the unit of /proc/PID/stat's times; 100 on every Linux architecture vmfork runs on. */
export const CLOCK_TICKS_PER_SECOND = 100;

export interface CpuWindow {
  seconds: number;
  /** Percent of one core per process over the window (processes that ended in it are left out). */
  perProcess: { name: string; percent: number }[];
}

/** CPU time of each process over `seconds` (two reads of /proc/PID/stat), as percent of one core. */
export async function measureCpu(procs: readonly QemuProcess[], seconds: number): Promise<CpuWindow> {
  const read = async (p: QemuProcess): Promise<number | undefined> => readFile(`/proc/${p.pid}/stat`, 'utf8').then(cpuTicksOf, () => undefined);
  const before = await Promise.all(procs.map(read));
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const after = await Promise.all(procs.map(read));
  const elapsed = (performance.now() - t0) / 1000;
  const perProcess: CpuWindow['perProcess'] = [];
  procs.forEach((p, i) => {
    const a = before[i];
    const b = after[i];
    if (a === undefined || b === undefined) return;
    perProcess.push({ name: p.name, percent: ((b - a) / CLOCK_TICKS_PER_SECOND / elapsed) * 100 });
  });
  return { seconds: elapsed, perProcess };
}

/** PSS (KiB) of each process, from smaps_rollup. */
export async function readPssKiB(procs: readonly QemuProcess[]): Promise<number[]> {
  const out: number[] = [];
  for (const p of procs) {
    const text = await readFile(`/proc/${p.pid}/smaps_rollup`, 'utf8').catch(() => undefined);
    if (text) out.push(parseSmapsRollup(text).Pss ?? 0);
  }
  return out;
}
