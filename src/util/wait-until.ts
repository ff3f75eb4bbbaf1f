import { setTimeout as sleep } from 'node:timers/promises';
import { VmforkError } from '../errors.js';

export interface WaitOptions {
  /** Give up this many ms from the call (a wait with no deadline can stall a task or a CI run for ever). */
  deadlineMs: number;
  /** Pause between two looks, in ms. @default 200 */
  everyMs?: number;
  /** Stops the wait early (a cancelled task); the signal's reason is thrown. */
  signal?: AbortSignal;
  /** Says what was awaited, for the timeout's message ("replica r-1 to be ready"). */
  what?: string;
}

/**
 * Calls `check` until it returns something other than `undefined`/`false` and resolves with that value; past the
 * deadline it throws VMFORK_TIMEOUT naming `what`. A check that throws ends the wait with its error. The one way
 * src/ and test/ poll for something another process or the guest does (no `for (;;)` loops of their own).
 */
export async function waitUntil<T>(check: () => Promise<T | undefined | false> | T | undefined | false, options: WaitOptions): Promise<T> {
  const every = options.everyMs ?? 200;
  const deadline = performance.now() + options.deadlineMs;
  for (let attempt = 0; ; attempt++) {
    options.signal?.throwIfAborted();
    const value = await check();
    if (value !== undefined && value !== false) return value;
    const left = deadline - performance.now();
    if (left <= 0) {
      throw new VmforkError('VMFORK_TIMEOUT', `gave up waiting for ${options.what ?? 'a condition'} after ${Math.round(options.deadlineMs / 1000)} s (${attempt + 1} looks)`, {
        details: { what: options.what ?? null, deadlineMs: options.deadlineMs },
      });
    }
    await sleep(Math.min(every, left), undefined, options.signal ? { signal: options.signal } : {}).catch((err: unknown) => {
      throw options.signal?.reason ?? err;
    });
  }
}
