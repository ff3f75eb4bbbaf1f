import { availableParallelism } from 'node:os';
import { VmforkError, toVmforkError } from '../errors.js';
import { actorFor } from '../host/index.js';
import type { VmDeps } from '../vm/index.js';
import { forkChild, type ForkedChild } from './child.js';
import { planFork, type ForkRequest } from './plan.js';

export interface ForkBatchOptions extends ForkRequest {
  /** Children forked at once. @default the number of CPUs */
  concurrency?: number;
  /** Called as each child finishes (progress bars). */
  onChild?: (done: ForkedChild | { name: string; error: VmforkError }) => void;
}

export interface ForkBatchResult {
  template: string;
  network: string;
  children: ForkedChild[];
  failed: { name: string; error: ReturnType<VmforkError['toJSON']> }[];
  wallMs: number;
}

/**
 * Forks `count` children in parallel under a concurrency limit. Validation and the reservation of every name and
 * address happen once for the batch, before anything is created; after that a failed child is rolled back alone
 * and reported, the others stand.
 */
export async function forkChildren(deps: VmDeps, options: ForkBatchOptions): Promise<ForkBatchResult> {
  if (options.concurrency !== undefined && (!Number.isInteger(options.concurrency) || options.concurrency < 1)) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `concurrency must be a whole number ≥ 1, got ${String(options.concurrency)}`);
  }
  const actor = await actorFor('fork');
  const plan = await planFork(deps, options, actor);
  const t0 = performance.now();
  const limit = Math.max(1, Math.min(options.concurrency ?? availableParallelism(), plan.children.length));
  const children: ForkedChild[] = [];
  const failed: ForkBatchResult['failed'] = [];
  const queue = [...plan.children];
  const worker = async (): Promise<void> => {
    for (let reserved = queue.shift(); reserved !== undefined; reserved = queue.shift()) {
      try {
        const child = await forkChild(deps, plan.template, reserved, actor);
        children.push(child);
        options.onChild?.(child);
      } catch (err) {
        const error = toVmforkError(err, 'VMFORK_FORK_FAILED');
        failed.push({ name: reserved.name, error: error.toJSON() });
        options.onChild?.({ name: reserved.name, error });
      }
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  children.sort((a, b) => plan.names.indexOf(a.name) - plan.names.indexOf(b.name));
  return { template: options.template, network: plan.network, children, failed, wallMs: Math.round(performance.now() - t0) };
}
