import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { availableMemoryMiB, checkHostCapacity } from '../../src/host/capacity.js';

const MEMINFO = 'MemTotal:       24576000 kB\nMemFree:        20000000 kB\nMemAvailable:   22000000 kB\n';

test('availableMemoryMiB reads MemAvailable', async () => {
  assert.equal(await availableMemoryMiB(MEMINFO), Math.floor(22000000 / 1024));
  await assert.rejects(availableMemoryMiB('MemTotal: 1 kB\n'), { code: 'VMFORK_INTERNAL' });
});

test('no disk space is VMFORK_NO_SPACE, checked before memory', async () => {
  await assert.rejects(checkHostCapacity({ dir: tmpdir(), diskBytes: 2 ** 60, memoryMiB: 2 ** 30, count: 1 }), (e: unknown) => {
    const err = e as { code: string; details: { neededBytes: number } };
    return err.code === 'VMFORK_NO_SPACE' && err.details.neededBytes === 2 ** 60;
  });
});

test('a count the host cannot hold is VMFORK_INSUFFICIENT_MEMORY, saying how many fit', async () => {
  const avail = await availableMemoryMiB();
  const perVm = 1024 + 64;
  const fit = Math.floor(avail / perVm);
  await assert.rejects(checkHostCapacity({ dir: tmpdir(), diskBytes: 1, memoryMiB: 1024, count: fit + 1000 }), (e: unknown) => {
    const err = e as { code: string; message: string; details: { fit: number } };
    return err.code === 'VMFORK_INSUFFICIENT_MEMORY' && Math.abs(err.details.fit - fit) <= 1 && /holds \d+ VM/.test(err.message);
  });
  await checkHostCapacity({ dir: tmpdir(), diskBytes: 1, memoryMiB: 64, count: 1 });
});
