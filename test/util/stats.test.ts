import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describe, percentile, roundStats } from '../../src/util/stats.js';

test('percentile interpolates linearly between closest ranks', () => {
  const xs = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
  assert.equal(percentile(xs, 50), 55);
  assert.equal(percentile(xs, 0), 10);
  assert.equal(percentile(xs, 100), 100);
  // rank 0.95 × 9 = 8.55 → 90 + 0.55 × 10
  assert.ok(Math.abs((percentile(xs, 95) as number) - 95.5) < 1e-9);
});

test('percentile ignores input order and does not sort the caller\'s array', () => {
  const xs = [3, 1, 2];
  assert.equal(percentile(xs, 50), 2);
  assert.deepEqual(xs, [3, 1, 2]);
});

test('percentile of one sample is that sample; of none is undefined', () => {
  assert.equal(percentile([7], 95), 7);
  assert.equal(percentile([], 50), undefined);
});

test('percentile rejects q outside 0..100', () => {
  assert.throws(() => percentile([1], 101), { code: 'VMFORK_INVALID_ARGUMENT' });
  assert.throws(() => percentile([1], Number.NaN), { code: 'VMFORK_INVALID_ARGUMENT' });
});

test('describe gives n, min, max, mean, p50, p95, sum; undefined for no samples', () => {
  const s = describe([4, 1, 3, 2]);
  assert.ok(s);
  assert.deepEqual({ ...s, p95: undefined }, { n: 4, min: 1, max: 4, mean: 2.5, p50: 2.5, p95: undefined, sum: 10 });
  assert.ok(Math.abs(s.p95 - 3.85) < 1e-9);
  assert.equal(describe([]), undefined);
});

test('roundStats rounds every figure', () => {
  assert.deepEqual(roundStats(describe([1, 2]), 0), { n: 2, min: 1, max: 2, mean: 2, p50: 2, p95: 2, sum: 3 });
  assert.equal(roundStats(undefined), undefined);
});
