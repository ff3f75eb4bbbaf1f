import PgBoss from 'pg-boss';
import { VmforkError } from '../errors.js';
import { redactUrl, type Logger } from '../util/index.js';
import type { HostJob, JobAnswer } from './host-job.js';

/**
 * The fleet's work queue (issue 14 item 2): pg-boss on the store's PostgreSQL, in its own schema. One queue per host
 * (`host-<name>`): only that host's agent fetches from it, so a host's steps run only there. pg-boss gives what a
 * queue must get right and we do not re-make: SKIP LOCKED fetches, a retry policy, expiry of jobs whose worker
 * vanished, and an archive of ended jobs. Chosen over graphile-worker because its queues are plain names made at
 * runtime (a host joining is `createQueue`), while graphile-worker's workers take every job whose task they know
 * and cannot be held to one host's queue (docs/jobs.md).
 */
export const JOB_SCHEMA = 'vmfork_jobs';

/** A host's queue. Host names are RFC 1123 labels, which pg-boss accepts as queue names. */
export function hostQueue(host: string): string {
  return `host-${host}`;
}

/**
 * The retry policy of every host queue: a job whose agent died mid-step (its successor fails it at start; pg-boss
 * expires it otherwise) runs again twice, 5 s apart; every step is idempotent, so a re-run finishes or redoes it.
 */
export const HOST_QUEUE_POLICY = { retryLimit: 2, retryDelay: 5, expireInSeconds: 3600 } as const;

/** One job of a host's queue as `vmfork host jobs` shows it. */
export interface HostJobView {
  id: string;
  op: string;
  /** pg-boss's: created, retry, active, completed, cancelled, failed. */
  state: string;
  /** Times an agent took it. */
  attempts: number;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
  /** The error it was answered with, or its last failure. */
  error: string | null;
}

interface JobRow {
  id: string;
  data: unknown;
  state: string;
  retry_count: number;
  created_on: Date | string;
  started_on: Date | string | null;
  completed_on: Date | string | null;
  output: unknown;
}

export interface JobQueueOptions {
  /** Runs pg-boss's maintenance (expiry, archive) in this process: agents and servers do, a one-shot CLI does not. */
  supervise?: boolean;
}

/** A pg-boss instance on the store's database, and the few things vmfork does with it. */
export class JobQueue {
  private constructor(
    readonly boss: PgBoss,
    private readonly log: Logger,
  ) {}

  /** The queue for one call (a CLI command, a pool operation), stopped after it. */
  static async using<T>(url: string, log: Logger, fn: (queue: JobQueue) => Promise<T>): Promise<T> {
    const queue = await JobQueue.open(url, log);
    try {
      return await fn(queue);
    } finally {
      await queue.stop();
    }
  }

  static async open(url: string, log: Logger, options: JobQueueOptions = {}): Promise<JobQueue> {
    const boss = new PgBoss({ connectionString: url, schema: JOB_SCHEMA, max: 4, supervise: options.supervise ?? false, schedule: false, application_name: 'vmfork-jobs' });
    // a database restart is survived by every pool connection being made again; pg-boss reports it as an error event
    boss.on('error', (err: Error) => log.warn({ err }, 'job queue: database error (retried)'));
    try {
      await boss.start();
    } catch (err) {
      await boss.stop({ graceful: false, wait: false }).catch(() => undefined);
      throw new VmforkError('VMFORK_STORE_UNREACHABLE', `cannot open the job queue at ${redactUrl(url)}: ${(err as Error).message}`, { cause: err, details: { db: redactUrl(url) } });
    }
    return new JobQueue(boss, log);
  }

  /** Makes a host's queue (idempotent: an agent calls it at every start, senders before their first job). */
  async ensureHostQueue(host: string): Promise<void> {
    const name = hostQueue(host);
    if (!(await this.boss.getQueue(name))) {
      await this.boss.createQueue(name, { name, policy: 'standard', ...HOST_QUEUE_POLICY }).catch(async (err: unknown) => {
        // two processes made it at once: fine when it exists now
        if (!(await this.boss.getQueue(name))) throw err;
      });
    }
  }

  /** Puts a job on a host's queue; resolves with its id. */
  async send(host: string, job: HostJob): Promise<string> {
    await this.ensureHostQueue(host);
    const id = await this.boss.send(hostQueue(host), job, {});
    if (!id) throw new VmforkError('VMFORK_INTERNAL', `the job queue did not take a ${job.op} job for host ${host}`);
    this.log.info({ host, job: id, op: job.op }, 'job sent');
    return id;
  }

  /** The job's current record (its state, retries, answer), or undefined once it is gone from the queue. */
  async get(host: string, id: string): Promise<PgBoss.JobWithMetadata<HostJob> | undefined> {
    return (await this.boss.getJobById<HostJob>(hostQueue(host), id, { includeArchive: true })) ?? undefined;
  }

  /**
   * Jobs of `host`'s queue that are `active`: called by a host's agent at start, while it holds the host's lock,
   * these were taken by a predecessor that died. They are failed, so pg-boss's retry policy runs them again.
   */
  async failLeftActive(host: string, why: string): Promise<string[]> {
    const { rows } = await this.boss.getDb().executeSql(`select id from ${JOB_SCHEMA}.job where name = $1 and state = 'active'`, [hostQueue(host)]);
    const ids = (rows as { id: string }[]).map((r) => r.id);
    for (const id of ids) await this.boss.fail(hostQueue(host), id, { message: why });
    return ids;
  }

  /** Takes at most `max` jobs of `host`'s queue, with their metadata (retry count). */
  async fetch(host: string, max: number): Promise<PgBoss.JobWithMetadata<unknown>[]> {
    return (await this.boss.fetch<unknown>(hostQueue(host), { batchSize: max, includeMetadata: true })) ?? [];
  }

  /** Ends a job with the agent's answer (a result, or an error a retry would not change). */
  async complete(host: string, id: string, answer: JobAnswer): Promise<void> {
    await this.boss.complete(hostQueue(host), id, answer);
  }

  /** Fails a job: pg-boss runs it again while its retries last. */
  async fail(host: string, id: string, err: Error): Promise<void> {
    await this.boss.fail(hostQueue(host), id, { message: err.message });
  }

  /**
   * A host's jobs, newest first (at most `limit`): those still queued or running and those ended recently (pg-boss
   * archives ended jobs after 12 hours and deletes them after 14 days).
   */
  async list(host: string, limit = 50): Promise<HostJobView[]> {
    const cols = 'id, data, state, retry_count, created_on, started_on, completed_on, output';
    const { rows } = await this.boss.getDb().executeSql(
      `select * from (select ${cols} from ${JOB_SCHEMA}.job where name = $1 union all select ${cols} from ${JOB_SCHEMA}.archive where name = $1) j order by created_on desc limit $2`,
      [hostQueue(host), limit],
    );
    return (rows as JobRow[]).map((r) => {
      const out = (r.output ?? {}) as { ok?: boolean; error?: { code?: string; message?: string }; message?: string };
      const error = out.ok === false ? `${out.error?.code ?? '?'}: ${out.error?.message ?? ''}` : r.state === 'failed' || r.state === 'retry' ? (out.message ?? null) : null;
      return {
        id: r.id,
        op: String((r.data as { op?: unknown } | null)?.op ?? '?'),
        state: r.state,
        attempts: r.retry_count + (r.started_on ? 1 : 0),
        createdAt: new Date(r.created_on).toISOString(),
        startedAt: r.started_on ? new Date(r.started_on).toISOString() : null,
        endedAt: r.completed_on ? new Date(r.completed_on).toISOString() : null,
        error,
      };
    });
  }

  async stop(): Promise<void> {
    await this.boss.stop({ graceful: false, wait: true, timeout: 5000 }).catch(() => undefined);
  }
}


