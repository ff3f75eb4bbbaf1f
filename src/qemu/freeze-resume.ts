import { loadState, saveState } from './migration-state.js';
import { QmpClient } from './qmp-client.js';

/**
 * The fork mechanism — read this first. A template ("forked state") is a running guest frozen at one instruction:
 * its RAM already lives in a shared file (memory-backend-file, share=on), so freezing saves only the device state.
 * A child is a new QEMU with the same device layout, the same RAM file mapped copy-on-write (share=off) and
 * `-incoming defer`; resuming loads that device state and continues at the frozen instruction. Measured on this
 * project's hosts: freeze ~15 ms, resume ~20 ms (docs/forking.md).
 *
 * Both sides set `x-ignore-shared` before the migration starts: it is what keeps the RAM out of the stream (and
 * what makes the incoming side take the RAM from the file instead of expecting it in the stream). QEMU runs an
 * The state goes through src/qemu/migration-state.ts (a socket vmfork serves out, a descriptor handed in).
 */

export interface FreezeResult {
  /** From `stop` to the end of the save: the time the guest stood still before quitting. */
  cutMs: number;
  /** Bytes QEMU reports it transferred (device state and firmware blocks; no guest RAM). */
  stateBytes?: number;
}

/**
 * Freezes the VM behind `qmpPath` into `statePath` and makes QEMU quit: `stop` → x-ignore-shared → `migrate` to
 * the file → wait for `completed` → `quit`. The order is the invariant: not one guest instruction may run between
 * `stop` and the end of the save (the RAM file and the state must describe the same instant), and the capability
 * must be set before `migrate` or QEMU streams all of RAM.
 */
export async function freezeToFile(qmpPath: string, statePath: string, options: { timeoutMs?: number } = {}): Promise<FreezeResult> {
  const qmp = await QmpClient.connect(qmpPath, { connectTimeoutMs: 10_000 });
  try {
    const t0 = performance.now();
    await qmp.stop();
    await qmp.migrateSetCapabilities([{ capability: 'x-ignore-shared', state: true }]);
    const info = await saveState(qmp, qmpPath, { file: statePath }, { timeoutMs: options.timeoutMs ?? 120_000, pollMs: 5 });
    const cutMs = performance.now() - t0;
    // the parent must never run again: the RAM file now belongs to the children
    await qmp.quit();
    const bytes = info.ram?.transferred;
    return bytes === undefined ? { cutMs } : { cutMs, stateBytes: bytes };
  } finally {
    qmp.close();
  }
}

export interface ResumeMarks {
  /** Device state loaded: QEMU reports `paused`. */
  loaded?(): void;
  /** `cont` answered: the guest runs on from the template's instruction. */
  running?(): void;
}

/**
 * Resumes a frozen template in a QEMU started with `-incoming defer` and the template's state as `incomingState`
 * (and the template's layout): x-ignore-shared → `migrate-incoming` from that descriptor → wait for `paused` → `cont`. The capability must be set before
 * `migrate-incoming`, which starts loading at once.
 */
export async function resumeFromFile(qmpPath: string, marks: ResumeMarks = {}, options: { timeoutMs?: number } = {}): Promise<void> {
  const qmp = await QmpClient.connect(qmpPath, { connectTimeoutMs: 10_000 });
  try {
    await qmp.migrateSetCapabilities([{ capability: 'x-ignore-shared', state: true }]);
    await loadState(qmp, { timeoutMs: options.timeoutMs ?? 60_000, pollMs: 2 });
    marks.loaded?.();
    await qmp.cont();
    marks.running?.();
  } finally {
    qmp.close();
  }
}
