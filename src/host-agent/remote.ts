import { VmforkError } from '../errors.js';
import { JobQueue, runOnHost, type HostJob, type HostJobView } from '../jobs/index.js';
import { childNames, type ForkBatchResult } from '../fork/index.js';
import type { HostCollection } from '../verify/index.js';
import { getReplica, isPostgresUrl, requireTemplate, requireVm, vmNames } from '../store/index.js';
import { hereHost, type VmDeps } from '../vm/index.js';

/** The host a VM is on when that is not this process's host (its agent must act on it); undefined when it is here. */
export async function remoteHostOf(deps: VmDeps, name: string): Promise<string | undefined> {
  const vm = await requireVm(deps.db, name);
  return vm.host_id === hereHost(deps) ? undefined : vm.host_id;
}

/** The host a template is on when that is not this process's host (its children fork there); undefined when here. */
export async function remoteHostOfTemplate(deps: VmDeps, name: string): Promise<string | undefined> {
  const row = await requireTemplate(deps.db, name);
  return row.host_id === hereHost(deps) ? undefined : row.host_id;
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
  return JobQueue.using(deps.home.db, deps.log, fn);
}

/** A host's jobs, newest first (`vmfork host jobs`). */
export async function listHostJobs(deps: VmDeps, host: string, limit = 50): Promise<HostJobView[]> {
  const refusal = (): VmforkError =>
    new VmforkError('VMFORK_INVALID_ARGUMENT', "hosts' job queues are on the fleet's PostgreSQL store: give --db postgres://… or VMFORK_DB (docs/jobs.md)", { details: { field: 'db' } });
  return withQueue(deps, refusal, (queue) => queue.list(host, limit));
}

/**
 * Forks children of another host's template by its agent. The children are named here, not by the agent, so a fork
 * the queue runs again (its agent died) finds those it already made. Names are picked against the fleet's VMs now;
 * one taken meanwhile fails the fork with its name.
 */
export async function forkOnHost(
  deps: VmDeps,
  host: string,
  request: { template: string; count: number; namePattern?: string | undefined; network?: string | undefined; awaitKicks?: boolean | undefined },
): Promise<ForkBatchResult & { host: string; already: string[] }> {
  const names = childNames(request.namePattern ?? `${request.template}-{n}`, request.count, await vmNames(deps.db));
  const job = { op: 'fork' as const, template: request.template, names, ...(request.network ? { network: request.network } : {}), awaitKicks: Boolean(request.awaitKicks) };
  return (await sendHostJob(deps, host, job)) as unknown as ForkBatchResult & { host: string; already: string[] };
}

/** `vmfork verify`'s collector for children on another host: that host's agent reads them (a verify-collect job). */
export function collectOnHostFor(deps: VmDeps): ((host: string, names: string[]) => Promise<HostCollection>) | undefined {
  if (!isPostgresUrl(deps.home.db)) return undefined;
  return async (host, names) => (await sendHostJob(deps, host, { op: 'verify-collect', names })) as unknown as HostCollection;
}

/** Runs a step on another host of the fleet: a job on that host's queue, its answer awaited (src/jobs/). */
export async function sendHostJob(deps: VmDeps, host: string, job: HostJob, options: { signal?: AbortSignal } = {}): Promise<Record<string, unknown>> {
  const refusal = (): VmforkError =>
    new VmforkError('VMFORK_INVALID_ARGUMENT', `host "${host}" is reached through the fleet's PostgreSQL store: give --db postgres://… or VMFORK_DB (docs/hosts.md)`, {
      details: { field: 'host', host },
    });
  return withQueue(deps, refusal, (queue) => runOnHost(queue, deps.db, host, job, options));
}
