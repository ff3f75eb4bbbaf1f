import { isVmforkError } from '../errors.js';
import type { HostJob, JobAnswer } from '../jobs/index.js';
import { getVm } from '../store/index.js';
import { bootVm, destroyVm, startVm, stopVm, vmSummary } from '../vm/index.js';
import { exportReplica, makeReplicaHere, receiveReplicaHere, removeReplicaHere, unexportReplica } from './replica-steps.js';
import type { StepContext } from './step-context.js';
import { convergePoolHere, refreshPoolChildHere } from './pool-steps.js';
import { serveTemplate, unserveTemplate } from './lazy-steps.js';
import { collectHere } from '../verify/index.js';
import { createTemplateHere, execHere, forkHere, removeTemplateHere } from './vm-steps.js';

/**
 * Runs one job's step on this host, with this host's data dir and name (deps.hostId). Every step may run again (the
 * agent that first took it died: pg-boss retries it after the new agent healed what the old one left), so each
 * first looks for its own finished work:
 * - vm-boot of a VM already running here answers with it;
 * - vm-stop of a stopped VM and vm-destroy of a VM that is gone answer at once;
 * - replica-make and replica-receive find the replica by its key; replica-export of an id it serves answers with it;
 * - replica-rm of a replica that is gone answers at once.
 */
export async function runHostStep(ctx: StepContext, job: HostJob, attempt: number, signal: AbortSignal): Promise<Record<string, unknown>> {
  const deps = ctx.deps;
  switch (job.op) {
    case 'vm-boot': {
      const found = attempt > 0 ? await getVm(deps.db, job.name) : undefined;
      if (found && found.host_id === deps.hostId && found.state === 'running' && found.image_name === job.image) {
        return { ...vmSummary(found), alreadyBooted: true };
      }
      const r = await bootVm(deps, {
        image: job.image,
        name: job.name,
        ...(job.memory ? { memory: job.memory } : {}),
        ...(job.cpus ? { cpus: job.cpus } : {}),
        ...(job.accel ? { accel: job.accel as 'auto' | 'kvm' | 'tcg' } : {}),
        ...(job.screen ? { screen: true } : {}),
        signal,
      });
      return { ...r, host: deps.hostId };
    }
    case 'vm-stop':
      return vmSummary(await stopVm(deps, job.name, job.timeoutMs ? { timeoutMs: job.timeoutMs } : {}));
    case 'vm-start': {
      const found = await getVm(deps.db, job.name);
      if (attempt > 0 && found?.state === 'running') return { ...vmSummary(found), alreadyRunning: true };
      const r = await startVm(deps, job.name);
      return { ...vmSummary(r.vm), bootId: r.identity.bootId, hostname: r.identity.hostname, secondsToAgent: Math.round(r.secondsToAgent * 1000) / 1000 };
    }
    case 'vm-destroy': {
      if (attempt > 0 && !(await getVm(deps.db, job.name))) return { name: job.name, destroyed: true, released: [] };
      return { ...(await destroyVm(deps, job.name)), destroyed: true };
    }
    case 'template-create':
      return createTemplateHere(ctx, job, attempt, signal);
    case 'template-rm':
      return removeTemplateHere(ctx, job.name, attempt);
    case 'fork':
      return forkHere(ctx, job, attempt, signal);
    case 'vm-exec':
      return execHere(ctx, job.name, job.command, job.timeoutMs);
    case 'pool-host-converge':
      return convergePoolHere(ctx, job.pool, job.names, signal, job.lazyFrom);
    case 'pool-child-refresh':
      return refreshPoolChildHere(ctx, job.pool, job.name, signal);
    case 'template-serve':
      return serveTemplate(ctx, job.pool, job.replica, job.serveId);
    case 'template-unserve':
      return unserveTemplate(ctx, job.serveId);
    case 'verify-collect':
      return { ...(await collectHere(ctx.deps, job.names)) };
    // the replica map makes, reuses or waits for a replica by its key: a re-run finds the first run's work
    case 'replica-make':
      return makeReplicaHere(ctx, job.spec);
    case 'replica-receive':
      return receiveReplicaHere(ctx, job.replica, job.datastore);
    case 'replica-export':
      return exportReplica(ctx, job.replica, job.exportId);
    case 'replica-unexport':
      return unexportReplica(ctx, job.exportId);
    case 'replica-rm':
      return removeReplicaHere(ctx, job.replica, attempt);
  }
}

// the store or the machine failing under a step: another attempt (after a heal) may well succeed
const RETRIED = new Set(['VMFORK_INTERNAL', 'VMFORK_STORE_FAILED', 'VMFORK_STORE_UNREACHABLE', 'VMFORK_TIMEOUT']);

/** A step's error as the job's answer, or undefined when the job should fail and be retried by the queue. */
export function errorAnswer(err: unknown): JobAnswer | undefined {
  if (!isVmforkError(err) || RETRIED.has(err.code)) return undefined;
  return { ok: false, error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) } };
}
