import { availableParallelism, release } from 'node:os';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { detectAccel, qemuProgramVersion, readHostFacts } from '../src/host/index.js';
import { run } from '../src/util/index.js';

/** The 1/5/15-minute load averages, so a reader can tell a quiet run from one sharing the 2 cores. */
export interface LoadAvg {
  at: string;
  one: number;
  five: number;
  fifteen: number;
  /** `running/total` scheduling entities at that instant. */
  tasks: string;
  /** QEMU processes on the host that this run did not start (other engineers' tests). */
  otherQemu?: number;
}

export interface MachineFacts {
  nproc: number;
  memTotalKiB: number;
  kernel: string;
  node: string;
  accel: 'kvm' | 'tcg';
  accelReason: string;
  qemuVersion: string;
  qemuBuild: string;
  /** The vmfork code measured: HEAD and how many paths differ from it (others work in this tree meanwhile). */
  revision: string;
  /** Filesystem type of the bench's data dir: the template RAM file lives there (tmpfs → Shmem, ext4 → page cache). */
  dataDirFs: string;
}

export function parseLoadAvg(text: string, at: Date = new Date()): LoadAvg {
  const [one, five, fifteen, tasks] = text.trim().split(/\s+/);
  return { at: at.toISOString(), one: Number(one), five: Number(five), fifteen: Number(fifteen), tasks: tasks ?? '' };
}

/** The load average, and how many QEMU processes whose command line does not name `ownRoot` are running. */
export async function readLoadAvg(ownRoot?: string): Promise<LoadAvg> {
  const load = parseLoadAvg(await readFile('/proc/loadavg', 'utf8'));
  const ps = await run('pgrep', ['-af', 'qemu-system'], { allowFailure: true });
  const lines = ps.stdout.split('\n').filter(Boolean);
  return { ...load, otherQemu: lines.filter((l) => !(ownRoot && l.includes(`${ownRoot}/`))).length };
}

/** One `Key: N kB` value of /proc/meminfo, in KiB. */
export function meminfoKiB(text: string, key: string): number | undefined {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(text);
  return m?.[1] ? Number(m[1]) : undefined;
}

export async function readMeminfoKiB(key: string): Promise<number> {
  return meminfoKiB(await readFile('/proc/meminfo', 'utf8'), key) ?? 0;
}

export async function readMachineFacts(dataDir: string): Promise<MachineFacts> {
  const accel = detectAccel(await readHostFacts(), 'auto');
  // facts are reported even when QEMU is missing: the run then fails at its first phase, with this in the result
  const qemu = await qemuProgramVersion().catch((err: unknown) => ({ version: 'unknown', build: (err as Error).message }));
  const fs = await run('stat', ['-f', '-c', '%T', dataDir], { allowFailure: true });
  const repo = join(import.meta.dirname, '..', '..');
  const head = await run('git', ['-C', repo, 'rev-parse', '--short', 'HEAD'], { allowFailure: true });
  const dirty = await run('git', ['-C', repo, 'status', '--porcelain'], { allowFailure: true });
  const changed = dirty.stdout.split('\n').filter(Boolean).length;
  return {
    nproc: availableParallelism(),
    memTotalKiB: await readMeminfoKiB('MemTotal'),
    kernel: release(),
    node: process.version,
    accel: accel.accel,
    accelReason: accel.reason,
    qemuVersion: qemu.version,
    qemuBuild: qemu.build,
    revision: head.code === 0 ? `${head.stdout.trim()}${changed ? ` + ${changed} uncommitted paths` : ''}` : 'unknown',
    dataDirFs: fs.stdout.trim() || 'unknown',
  };
}
