import { VmforkError } from '../errors.js';

/** Order statistics for timing samples (benchmarks, the demo). Pure: no I/O, no clock. */

export interface Stats {
  n: number;
  min: number;
  max: number;
  mean: number;
  p50: number;
  p95: number;
  sum: number;
}

/**
 * The q-th percentile (0 ≤ q ≤ 100) by linear interpolation between closest ranks (numpy's default, Excel's
 * PERCENTILE.INC). Chosen over nearest-rank because with n = 10 nearest-rank p95 is simply the maximum, which
 * would make one slow outlier the whole figure. Undefined for no samples.
 */
export function percentile(samples: readonly number[], q: number): number | undefined {
  if (!(q >= 0 && q <= 100)) throw new VmforkError('VMFORK_INVALID_ARGUMENT', `percentile must be within 0..100, got ${q}`);
  if (samples.length === 0) return undefined;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (q / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (rank - lo);
}

/** min/max/mean/p50/p95/sum of the samples; undefined when there are none (a phase that produced nothing). */
export function describe(samples: readonly number[]): Stats | undefined {
  if (samples.length === 0) return undefined;
  const sum = samples.reduce((s, x) => s + x, 0);
  return {
    n: samples.length,
    min: Math.min(...samples),
    max: Math.max(...samples),
    mean: sum / samples.length,
    p50: percentile(samples, 50) as number,
    p95: percentile(samples, 95) as number,
    sum,
  };
}

/** Rounds every figure of a Stats to `digits` decimals, so the result JSON is readable. */
export function roundStats(s: Stats | undefined, digits = 1): Stats | undefined {
  if (!s) return undefined;
  const r = (x: number): number => Math.round(x * 10 ** digits) / 10 ** digits;
  return { n: s.n, min: r(s.min), max: r(s.max), mean: r(s.mean), p50: r(s.p50), p95: r(s.p95), sum: r(s.sum) };
}
