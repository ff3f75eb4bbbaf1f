import { setTimeout as sleep } from 'node:timers/promises';
import type PgBoss from 'pg-boss';
import { parseHostJob, type JobAnswer } from '../jobs/index.js';
import { waitUntil } from '../util/index.js';
import type { StepContext } from './step-context.js';
import { unexportReplica } from './replica-steps.js';
import { errorAnswer, runHostStep } from './steps.js';

export interface JobWorkerOptions {
  /** Jobs run at once (forks of one pool run side by side). @default 4 */
  concurrency?: number;
  /** How often the queue is looked at when idle. @default 500 (pg-boss's floor) */
  pollMs?: number;
}

export interface JobWorker {
  /** Stops taking jobs; jobs still running are aborted, then failed, so that the next agent of this host runs them again. */
  stop(): Promise<void>;
}

// an answer is written even through a database restart: a lost answer would run the step once more
const ANSWER_DEADLINE_MS = 5 * 60_000;

/**
 * Takes this host's jobs and runs them (docs/jobs.md). pg-boss's own `work()` is not used: it completes a job
 * without waiting, so an answer lost to a database restart would become an unhandled rejection; here each answer is
 * written, and retried until the database takes it.
 */
export function startJobWorker(ctx: StepContext, options: JobWorkerOptions = {}): JobWorker {
  const { queue, deps } = ctx;
  const host = deps.hostId;
  const concurrency = options.concurrency ?? 4;
  const stopping = new AbortController();
  const active = new Map<string, Promise<void>>();
  let wake: (() => void) | undefined;

  const answer = (what: string, write: () => Promise<void>): Promise<void> =>
    waitUntil(() => write().then(() => true, (err: unknown) => void deps.log.warn({ err, host }, `could not record ${what}; retrying`)), {
      deadlineMs: ANSWER_DEADLINE_MS,
      everyMs: 1000,
      what,
    }).then(() => undefined, (err: unknown) => deps.log.error({ err, host }, `gave up recording ${what}: the queue's expiry runs it again`));

  const run = async (job: PgBoss.JobWithMetadata<unknown>): Promise<void> => {
    const log = deps.log.child({ host, job: job.id, attempt: job.retryCount + 1 });
    let outcome: JobAnswer | Error;
    try {
      const parsed = parseHostJob(job.data);
      log.info({ op: parsed.op }, 'job started');
      outcome = { ok: true, result: await runHostStep(ctx, parsed, job.retryCount, stopping.signal) };
    } catch (err) {
      outcome = stopping.signal.aborted ? new Error('the host agent stopped while running it') : (errorAnswer(err) ?? (err instanceof Error ? err : new Error(String(err))));
    }
    if (outcome instanceof Error) {
      log.warn({ err: outcome }, 'job failed: the queue runs it again while its retries last');
      await answer(`the failure of job ${job.id}`, () => queue.fail(host, job.id, outcome as Error));
    } else {
      log.info({ ok: outcome.ok }, 'job answered');
      await answer(`the answer to job ${job.id}`, () => queue.complete(host, job.id, outcome as JobAnswer));
    }
  };

  const loop = (async () => {
    while (!stopping.signal.aborted) {
      const free = concurrency - active.size;
      const jobs = free > 0 ? await queue.fetch(host, free).catch((err: unknown) => (deps.log.warn({ err, host }, 'could not fetch jobs'), [])) : [];
      for (const job of jobs) {
        const p = run(job).finally(() => {
          active.delete(job.id);
          wake?.();
        });
        active.set(job.id, p);
      }
      if (jobs.length > 0 && jobs.length === free) continue;
      // idle (or full): until the poll comes round, a job ends, or the agent stops
      await new Promise<void>((resolve) => {
        wake = resolve;
        void sleep(options.pollMs ?? 500, undefined, { signal: stopping.signal }).then(resolve, resolve);
      });
      wake = undefined;
    }
  })();

  return {
    stop: async () => {
      stopping.abort();
      await loop;
      await Promise.all(active.values());
      await Promise.all([...ctx.exports.keys()].map((id) => unexportReplica(ctx, id)));
    },
  };
}
