import { availableParallelism, totalmem } from 'node:os';
import { z } from 'zod';
import { detectAccel, readHostFacts } from './accel.js';
import { qemuProgramVersion } from './qemu-binary.js';

/** vCPUs placed children may have per host CPU unless its agent says otherwise (Nova's default allocation ratio). */
export const DEFAULT_CPU_ALLOCATION_RATIO = 16;

/** A host's machine as an agent reports it at its start (host-agent/agent.ts) and the server reads its own. */
export const MachineSchema = z.object({
  cpus: z.number().int(),
  /** vCPUs placement lets run per host CPU on it. */
  cpuAllocationRatio: z.number(),
  memoryBytes: z.number().int(),
  accel: z.string(),
  accelWhy: z.string(),
  /** The first line of `qemu-system-x86_64 --version` (its distribution build), or `not installed`. */
  qemuVersion: z.string(),
});
export type Machine = z.infer<typeof MachineSchema>;

/**
 * This host's machine, read from the running kernel and QEMU: what an agent registers at its start and what the
 * server shows for its own host, one reading so the two never disagree on what a CPU or a QEMU version is.
 */
export async function readMachine(cpuAllocationRatio: number = DEFAULT_CPU_ALLOCATION_RATIO): Promise<Machine> {
  const [facts, qemu] = await Promise.all([readHostFacts(), qemuProgramVersion().catch(() => undefined)]);
  const accel = detectAccel(facts);
  return {
    cpus: availableParallelism(),
    cpuAllocationRatio,
    memoryBytes: totalmem(),
    accel: accel.accel,
    accelWhy: accel.reason,
    qemuVersion: qemu?.build ?? 'not installed',
  };
}
