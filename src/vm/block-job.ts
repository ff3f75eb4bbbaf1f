import { VmforkError } from '../errors.js';
import type { QmpClient, QmpEvent } from '../qemu/index.js';
import { waitUntil } from '../util/index.js';

/** One entry of `query-block-jobs` (QEMU 7.2's BlockJobInfo, trimmed): `device` is the job's id. */
interface BlockJobInfo {
  device: string;
  type: string;
  len: number;
  offset: number;
  ready: boolean;
  status: string;
}

export interface BlockJobRun {
  /** The job-id given at start; a job of that id already in QEMU (a task resumed after its server died) is awaited. */
  id: string;
  /** Starts the job (block-stream, drive-mirror). */
  start: () => Promise<void>;
  /** A mirror: once READY (source and target in sync), `block-job-complete` pivots the drive onto the target. */
  pivot: boolean;
  deadlineMs: number;
  signal?: AbortSignal;
  /** Called on each look at a live job: bytes done of the job's current length (both grow while the guest writes). */
  progress?: (offset: number, len: number) => Promise<void>;
}

export interface BlockJobEnd {
  /** `completed`, or `gone`: the job had ended before this connection saw its event (the caller checks the result). */
  how: 'completed' | 'gone';
  len: number;
}

const jobs = (qmp: QmpClient): Promise<BlockJobInfo[]> => qmp.execute<BlockJobInfo[]>('query-block-jobs');

/**
 * Runs a block job to its end and waits for it by polling `query-block-jobs` (every 500 ms, for the progress) and
 * by its events. QMP sends an event before any reply that follows it on the same socket, so a job missing from the
 * list whose BLOCK_JOB_COMPLETED did not arrive ended before this connection was made. A COMPLETED event with an
 * `error`, or BLOCK_JOB_CANCELLED, is VMFORK_QMP_ERROR. Aborted, the job is cancelled and awaited: a cancelled
 * stream leaves its top image consistent (partly filled, backing file kept), a cancelled mirror leaves the source
 * the drive's image.
 */
export async function runBlockJob(qmp: QmpClient, job: BlockJobRun): Promise<BlockJobEnd> {
  let ended: QmpEvent | undefined;
  const mine = (e: QmpEvent): boolean => e.data?.device === job.id;
  const offs = ['BLOCK_JOB_COMPLETED', 'BLOCK_JOB_CANCELLED'].map((name) => qmp.on(name, (e) => (mine(e) ? (ended = e) : undefined)));
  let lastLen = 0;
  let completing = false;
  try {
    if (!(await jobs(qmp)).some((j) => j.device === job.id)) await job.start();
    const end = await waitUntil(
      async (): Promise<BlockJobEnd | undefined> => {
        if (ended) return { how: 'completed', len: Number(ended.data?.len ?? lastLen) };
        const live = (await jobs(qmp)).find((j) => j.device === job.id);
        if (!live) return ended ? { how: 'completed', len: Number((ended as QmpEvent).data?.len ?? lastLen) } : { how: 'gone', len: lastLen };
        lastLen = live.len;
        await job.progress?.(live.offset, live.len);
        if (job.pivot && live.ready && !completing) {
          completing = true;
          await qmp.execute('block-job-complete', { device: job.id });
        }
        return undefined;
      },
      { deadlineMs: job.deadlineMs, everyMs: 500, what: `block job ${job.id}`, ...(job.signal ? { signal: job.signal } : {}) },
    );
    const event = ended as QmpEvent | undefined;
    if (event?.event === 'BLOCK_JOB_CANCELLED' || typeof event?.data?.error === 'string') {
      const why = typeof event.data?.error === 'string' ? event.data.error : 'cancelled';
      throw new VmforkError('VMFORK_QMP_ERROR', `block job ${job.id} ended without finishing: ${why}`, { details: { job: job.id, error: why } });
    }
    return end;
  } catch (err) {
    await cancel(qmp, job.id);
    throw err;
  } finally {
    for (const off of offs) off();
  }
}

/** Cancels a job still in QEMU and waits until it is gone (its files are then the drive's or no one's). */
async function cancel(qmp: QmpClient, id: string): Promise<void> {
  if (qmp.closed || !(await jobs(qmp).catch(() => [])).some((j) => j.device === id)) return;
  await qmp.execute('block-job-cancel', { device: id, force: true }).catch(() => undefined);
  await waitUntil(async () => !(await jobs(qmp)).some((j) => j.device === id), { deadlineMs: 60_000, everyMs: 200, what: `block job ${id} to cancel` }).catch(() => undefined);
}
