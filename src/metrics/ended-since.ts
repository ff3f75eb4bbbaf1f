/**
 * How long after a scrape a row may still turn up stamped before it: a writer stamps `updated_at` with its own clock
 * before its transaction commits, and another host's clock may lag this one's by seconds.
 */
export const LATE_ROW_MS = 60_000;

/**
 * The high-water mark of the histograms fed from the store: each scrape asks for the rows that ended since the mark,
 * and each row is observed once by this process.
 *
 * The mark starts at this process's start, so the store's old history is not replayed: a histogram is a set of
 * counters, and a counter starts at zero with the process that exposes it — Prometheus sees the reset and its
 * `rate()`/`increase()` handle it. Replaying every task ever finished at each restart would instead show the whole
 * history as one burst.
 *
 * The query's lower bound trails the last scrape by LATE_ROW_MS, so a row committed late, or stamped by a clock a
 * little behind, is still found; the keys seen in that window keep it from being counted twice.
 */
export class EndedSince {
  private readonly startMs: number;
  private lastScrapeMs: number | undefined;
  private readonly seen = new Map<string, number>();

  constructor(startMs: number = Date.now()) {
    this.startMs = startMs;
  }

  /** The lower bound of the next query (an ISO instant). */
  since(): string {
    const trailing = this.lastScrapeMs === undefined ? this.startMs : this.lastScrapeMs - LATE_ROW_MS;
    return new Date(Math.max(this.startMs, trailing)).toISOString();
  }

  /**
   * The rows (of a query made at `nowMs` from `since()`) not observed yet, now marked as observed. Keys are
   * remembered only while their rows can still be returned: below the next lower bound they are forgotten.
   */
  fresh<T>(rows: readonly T[], key: (row: T) => string, at: (row: T) => string, nowMs: number = Date.now()): T[] {
    const out = rows.filter((r) => !this.seen.has(key(r)));
    for (const r of out) this.seen.set(key(r), Date.parse(at(r)));
    this.lastScrapeMs = nowMs;
    const floor = Date.parse(this.since());
    for (const [k, t] of this.seen) if (t < floor) this.seen.delete(k);
    return out;
  }
}
