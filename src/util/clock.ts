/**
 * Host wall clock in epoch ms with sub-millisecond resolution. Date.now() is whole ms, which would add up to 1 ms
 * of quantisation to clock offsets measured over windows of ~10 ms.
 */
export function hostNowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** The same instant in epoch ns, as guest-set-time and clock_settime want it. */
export function hostNowNs(): bigint {
  return BigInt(Math.round(hostNowMs() * 1000)) * 1000n;
}
