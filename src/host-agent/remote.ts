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

/** A host's jobs, newest first (`vmfork host jobs`). */
export async function listHostJobs(deps: VmDeps, host: string, limit = 50): Promise<HostJobView[]> {
  if (!isPostgresUrl(deps.home.db)) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', "hosts' job queues are on the fleet's PostgreSQL store: give --db postgres://… or VMFORK_DB (docs/jobs.md)", { details: { field: 'db' } });
  }
  const queue = await JobQueue.open(deps.home.db, deps.log);
  try {
    return await queue.list(host, limit);
  } finally {
    await queue.stop();
  }
}

/**
 * Runs a step on another host of the fleet: a job on that host's queue, its answer awaited (src/jobs/). Only a
 * PostgreSQL store has host agents and their queues.
 */
export async function sendHostJob(deps: VmDeps, host: string, job: HostJob, options: { signal?: AbortSignal } = {}): Promise<Record<string, unknown>> {
  if (!isPostgresUrl(deps.home.db)) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `host "${host}" is reached through the fleet's PostgreSQL store: give --db postgres://… or VMFORK_DB (docs/hosts.md)`, {
      details: { field: 'host', host },
    });
  }
  const queue = await JobQueue.open(deps.home.db, deps.log);
  try {
    return await runOnHost(queue, deps.db, host, job, options);
  } finally {
    await queue.stop();
  }
}
