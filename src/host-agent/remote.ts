import { VmforkError } from '../errors.js';
import { JobQueue, runOnHost, type HostJob, type HostJobView } from '../jobs/index.js';
import { getReplica, isPostgresUrl, requireVm } from '../store/index.js';
import { hereHost, type VmDeps } from '../vm/index.js';

/** The host a VM is on when that is not this process's host (its agent must act on it); undefined when it is here. */
export async function remoteHostOf(deps: VmDeps, name: string): Promise<string | undefined> {
  const vm = await requireVm(deps.db, name);
  return vm.host_id === hereHost(deps) ? undefined : vm.host_id;
}

/** The host a replica is on when that is not this process's host; undefined when it is here or there is none. */
export async function remoteHostOfReplica(deps: VmDeps, id: string): Promise<string | undefined> {
  const row = await getReplica(deps.db, id);
  return row && row.host_id !== hereHost(deps) ? row.host_id : undefined;
}

/**
 * The fleet's queue for one call, closed after it. Only a PostgreSQL store has host agents and their queues: on any
 * other, `refusal` is thrown before anything is opened.
 */
async function withQueue<T>(deps: VmDeps, refusal: () => VmforkError, fn: (queue: JobQueue) => Promise<T>): Promise<T> {
  if (!isPostgresUrl(deps.home.db)) throw refusal();
  const queue = await JobQueue.open(deps.home.db, deps.log);
  try {
    return await fn(queue);
  } finally {
    await queue.stop();
  }
}

/** A host's jobs, newest first (`vmfork host jobs`). */
export async function listHostJobs(deps: VmDeps, host: string, limit = 50): Promise<HostJobView[]> {
  const refusal = (): VmforkError =>
    new VmforkError('VMFORK_INVALID_ARGUMENT', "hosts' job queues are on the fleet's PostgreSQL store: give --db postgres://… or VMFORK_DB (docs/jobs.md)", { details: { field: 'db' } });
  return withQueue(deps, refusal, (queue) => queue.list(host, limit));
}

/** Runs a step on another host of the fleet: a job on that host's queue, its answer awaited (src/jobs/). */
export async function sendHostJob(deps: VmDeps, host: string, job: HostJob, options: { signal?: AbortSignal } = {}): Promise<Record<string, unknown>> {
  const refusal = (): VmforkError =>
    new VmforkError('VMFORK_INVALID_ARGUMENT', `host "${host}" is reached through the fleet's PostgreSQL store: give --db postgres://… or VMFORK_DB (docs/hosts.md)`, {
      details: { field: 'host', host },
    });
  return withQueue(deps, refusal, (queue) => runOnHost(queue, deps.db, host, job, options));
}
