import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism, totalmem } from 'node:os';
import { DEFAULT_CPU_ALLOCATION_RATIO, detectAccel, MachineSchema, readHostFacts, readMachine } from '../../src/host/index.js';

test('readMachine: the CPUs, memory, accelerator (with why) and QEMU build an agent registers and the server shows for its own host', async () => {
  const m = MachineSchema.parse(await readMachine());
  const accel = detectAccel(await readHostFacts());
  assert.deepEqual(
    { cpus: m.cpus, ratio: m.cpuAllocationRatio, memory: m.memoryBytes, accel: m.accel, why: m.accelWhy },
    { cpus: availableParallelism(), ratio: DEFAULT_CPU_ALLOCATION_RATIO, memory: totalmem(), accel: accel.accel, why: accel.reason },
  );
  assert.match(m.qemuVersion, /^QEMU emulator version \d+\.\d+/, 'the whole first line: a saved state loads only into the same build');
  assert.equal((await readMachine(2)).cpuAllocationRatio, 2, 'an agent\'s --cpu-allocation-ratio');
});
