import { readFile } from 'node:fs/promises';
import { VmforkError } from '../errors.js';
import { freeSpace } from './disk-space.js';
import { formatBytes } from '../util/index.js';

export interface CapacityRequest {
  /** A directory on the filesystem that will receive the VM files. */
  dir: string;
  /** Disk bytes needed in total. */
  diskBytes: number;
  /** Guest RAM per VM (worst case: every page touched). */
  memoryMiB: number;
  count: number;
  /** QEMU's own overhead per VM. @default 64 */
  overheadMiB?: number;
}

/** MemAvailable from /proc/meminfo, in MiB. */
export async function availableMemoryMiB(meminfo?: string): Promise<number> {
  const text = meminfo ?? (await readFile('/proc/meminfo', 'utf8'));
  const m = /^MemAvailable:\s+(\d+) kB/m.exec(text);
  if (!m?.[1]) throw new VmforkError('VMFORK_INTERNAL', 'cannot read MemAvailable from /proc/meminfo');
  return Math.floor(Number(m[1]) / 1024);
}

/** Refuses (before anything is created) a request the host cannot hold: disk first, then memory. */
export async function checkHostCapacity(req: CapacityRequest): Promise<void> {
  const { freeBytes: available } = await freeSpace(req.dir);
  if (available < req.diskBytes) {
    throw new VmforkError('VMFORK_NO_SPACE', `${formatBytes(available)} free under ${req.dir}, ${formatBytes(req.diskBytes)} needed`, {
      details: { dir: req.dir, availableBytes: available, neededBytes: req.diskBytes },
    });
  }
  const perVm = req.memoryMiB + (req.overheadMiB ?? 64);
  const avail = await availableMemoryMiB();
  const fit = Math.floor(avail / perVm);
  if (fit < req.count) {
    throw new VmforkError('VMFORK_INSUFFICIENT_MEMORY', `${avail} MiB available holds ${fit} VM(s) of ${req.memoryMiB} MiB, ${req.count} asked`, {
      details: { availableMiB: avail, perVmMiB: perVm, fit, asked: req.count },
    });
  }
}
