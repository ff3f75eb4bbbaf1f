import type { ProtocolLogger } from './json-line-stream.js';

export interface JunkOptions {
  /**
   * This many junk lines in a row (no good reply between them) and the connection is dropped. Real QEMU and qemu-ga
   * send none: a stale reply after a timeout is one, and the next good reply starts the count again.
   * @default 16
   */
  maxJunkLines?: number;
  /** At most one warn per this many ms per connection; the lines in between go to debug and are counted. @default 60000 */
  warnEveryMs?: number;
}

/**
 * Counts and logs the junk a peer sends on one connection (lines that are not the protocol, replies nobody asked
 * for, unsolicited replies pushed out of a full inbox). The log is rate-limited: a guest or a broken QEMU writing
 * junk in a loop would otherwise write a warn line per line it sends.
 */
export class JunkGuard {
  private inARow = 0;
  private suppressed = 0;
  private lastWarnAt = -Infinity;
  readonly maxJunkLines: number;
  private readonly warnEveryMs: number;

  constructor(
    private readonly logger: ProtocolLogger,
    private readonly context: Record<string, unknown>,
    options: JunkOptions = {},
  ) {
    this.maxJunkLines = options.maxJunkLines ?? 16;
    this.warnEveryMs = options.warnEveryMs ?? 60_000;
  }

  /** Notes one junk line; true when it is one too many and the caller must drop the connection. */
  junk(detail: Record<string, unknown>, msg: string): boolean {
    this.inARow++;
    const now = Date.now();
    if (now - this.lastWarnAt >= this.warnEveryMs) {
      this.lastWarnAt = now;
      this.logger.warn({ ...this.context, ...detail, junkInARow: this.inARow, suppressedSinceLastWarn: this.suppressed }, msg);
      this.suppressed = 0;
    } else {
      this.suppressed++;
      this.logger.debug({ ...this.context, ...detail, junkInARow: this.inARow }, msg);
    }
    return this.inARow >= this.maxJunkLines;
  }

  /** A good reply arrived: the peer is in step again. */
  good(): void {
    this.inARow = 0;
  }
}
