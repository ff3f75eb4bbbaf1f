import { VmforkError } from '../errors.js';
import { getHost, type Db } from '../store/index.js';
import { waitUntil } from '../util/index.js';
import { answerError, type HostJob, type JobAnswer } from './host-job.js';
import { HOST_QUEUE_POLICY, type JobQueue } from './job-queue.js';

/** A host that can be given work: it has an agent and is not `down` (a `lost` host's jobs wait for it to return). */
export async function requireAgentHost(db: Db, host: string): Promise<void> {
  const row = await getHost(db, host);
  if (!row || row.agent_protocol === null) {
    throw new VmforkError('VMFORK_HOST_NOT_FOUND', `no host "${host}" has an agent on this store: see vmfork host list`, { details: { host } });
  }
  if (row.state === 'down') {
    throw new VmforkError('VMFORK_HOST_STATE', `host "${host}" is down (its agent stopped): start its agent first`, { details: { host, state: row.state } });
  }
}

// every attempt may run to its expiry, with the retry delay between them
const LONGEST_MS = (HOST_QUEUE_POLICY.retryLimit + 1) * (HOST_QUEUE_POLICY.expireInSeconds + HOST_QUEUE_POLICY.retryDelay) * 1000;

/**
 * Sends `job` to `host`'s agent and waits for its answer: the step's result, or its error rethrown with the same code.
 * A job whose retries ran out (its agent died each time, or a step failed in a way a retry might have cured) is
 * VMFORK_HOST_JOB with the last failure. Waiting reads the job's row; the agent may take it at once or after a
 * restart.
 */
export async function runOnHost(queue: JobQueue, db: Db, host: string, job: HostJob, options: { signal?: AbortSignal } = {}): Promise<Record<string, unknown>> {
  await requireAgentHost(db, host);
  const id = await queue.send(host, job);
  const ended = await waitUntil(
    async () => {
      // the job is queued: a database away for a moment (a restart) costs looks, not the wait
      const j = await queue.get(host, id).catch(() => undefined);
      return j && (j.state === 'completed' || j.state === 'failed' || j.state === 'cancelled') ? j : undefined;
    },
    { deadlineMs: LONGEST_MS, everyMs: 250, ...(options.signal ? { signal: options.signal } : {}), what: `host ${host} to run job ${id} (${job.op})` },
  );
  const output = (ended.output ?? {}) as Partial<JobAnswer> & { message?: string };
  if (ended.state === 'completed' && output.ok === true) return output.result ?? {};
  if (ended.state === 'completed' && output.ok === false && output.error) throw answerError(host, output as Extract<JobAnswer, { ok: false }>);
  throw new VmforkError('VMFORK_HOST_JOB', `host ${host} did not finish job ${id} (${job.op}) after ${ended.retryCount + 1} attempts: ${output.message ?? ended.state}`, {
    details: { host, job: id, op: job.op, state: ended.state, attempts: ended.retryCount + 1 },
  });
}
