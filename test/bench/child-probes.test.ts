import { test } from 'node:test';
import assert from 'node:assert/strict';
import { topLayerDataBytes } from '../../bench/child-probes.js';

// `qemu-img map --output=json` of an overlay after writing 4 KiB at 0 and 70 KiB at 1 MiB (64 KiB clusters)
const MAP = [
  { start: 0, length: 65536, depth: 0, present: true, zero: false, data: true, offset: 327680 },
  { start: 65536, length: 983040, depth: 1, present: false, zero: true, data: false },
  { start: 1048576, length: 131072, depth: 0, present: true, zero: false, data: true, offset: 393216 },
  { start: 1179648, length: 9306112, depth: 1, present: false, zero: true, data: false },
  { start: 10485760, length: 65536, depth: 1, present: true, zero: false, data: true, offset: 0 },
];

test('topLayerDataBytes counts whole clusters with data in the overlay itself, not in its backing file', () => {
  assert.equal(topLayerDataBytes(MAP), 3 * 65536);
  assert.equal(topLayerDataBytes([]), 0);
});

test('topLayerDataBytes refuses output that is not a map', () => {
  assert.throws(() => topLayerDataBytes({ error: 'x' }), /JSON array/);
});
