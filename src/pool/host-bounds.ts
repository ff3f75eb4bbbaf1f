import { availableParallelism, totalmem } from 'node:os';
import { freeSpace } from '../host/index.js';
import { childShape } from '../replica/index.js';
import { parseSize } from '../util/index.js';
import { sizeText } from './spec-limits.js';
import type { PoolSpec, SpecProblem } from './spec.js';

/** The host facts a spec's fields are bounded by. */
export interface HostLimits {
  /** The host's RAM (MemTotal, as os.totalmem reads it): no VM's RAM may exceed it. */
  memoryMiB: number;
  /** CPUs this process may run on: a guest with more vCPUs only time-slices them. */
  cpus: number;
  /** The size of the pool's datastore's filesystem: no one disk may exceed it. */
  datastoreBytes: number;
}

/** This host's limits for a datastore at `path`. */
export async function localHostLimits(path: string): Promise<HostLimits> {
  const space = await freeSpace(path);
  return { memoryMiB: Math.floor(totalmem() / 1024 ** 2), cpus: availableParallelism(), datastoreBytes: space.totalBytes };
}

/**
 * The second validation pass: the bounds that depend on the host, run before anything is created, each naming its
 * bound (`cpus: at most 2 (this host's CPUs)`). A child's memory and CPUs count even when the spec leaves them to
 * the defaults. What passes here may still not fit beside other pools: that is the capacity check's to say.
 */
export function hostBoundProblems(spec: PoolSpec, host: HostLimits): SpecProblem[] {
  const out: SpecProblem[] = [];
  const { memoryMiB, cpus } = childShape(spec);
  const ram = roundDown(host.memoryMiB * 1024 ** 2);
  if (memoryMiB * 1024 ** 2 > ram) {
    out.push({ path: 'memory', message: `at most ${sizeText(ram)} (this host's RAM)${spec.memory === undefined ? `; the default is ${memoryMiB}M` : ''}` });
  }
  if (cpus > host.cpus) out.push({ path: 'cpus', message: `at most ${host.cpus} (this host's CPUs)` });
  const disk = roundDown(host.datastoreBytes);
  for (const field of ['disposable', 'userData'] as const) {
    const size = spec.disks[field];
    if (size !== undefined && parseSize(size) > disk) out.push({ path: `disks.${field}`, message: `at most ${sizeText(disk)} (the size of datastore ${spec.datastore})` });
  }
  return out;
}

/** A bound as a spec writes it: whole GiB from 1 GiB up, whole MiB below (the bound checked is the one shown). */
function roundDown(bytes: number): number {
  const unit = bytes >= 1024 ** 3 ? 1024 ** 3 : 1024 ** 2;
  return Math.floor(bytes / unit) * unit;
}
