import { availableParallelism } from 'node:os';
import { VmforkError, toVmforkError } from '../errors.js';
import { actorFor } from '../host/index.js';
import type { VmDeps } from '../vm/index.js';
import { rollbackVm } from '../vm/index.js';
import { forkChild, registerChild, type ChildCustomizer, type ForkedChild } from './child.js';
import { planFork, type ForkRequest, type ReservedChild } from './plan.js';
import { faultPoint } from '../util/index.js';

export interface ForkBatchOptions extends ForkRequest {
  /** Children forked at once. @default the number of CPUs */
  concurrency?: number;
  /** Called as each child finishes (progress bars). */
  onChild?: (done: ForkedChild | { name: string; error: VmforkError }) => void;
  /** Called as each child starts. */
  onStart?: (name: string) => void;
  /** Per-child customization after identity (a pool's phase 2). */
  customize?: ChildCustomizer;
  /** Stop forking further children after the first failure; the ones not started are released. @default false */
  stopOnError?: boolean;
  /** Reserve and pre-register the children (overlays made, powered off) instead of forking them. @default false */
  registerOnly?: boolean;
  /** Agent path: judge the service kicks after ready before a child is `running` (ForkChildOptions). @default true */
  awaitKicks?: boolean;
  /**
   * A cancelled task: children not yet started are released (reported as skipped), a child forking stops at its
   * next step and is rolled back (ForkChildOptions.signal), and the batch returns.
   */
  signal?: AbortSignal;
}

export interface ForkBatchResult {
  template: string;
  network: string;
  children: ForkedChild[];
  /** Pre-registered children (registerOnly). */
  registered: string[];
  failed: { name: string; error: ReturnType<VmforkError['toJSON']> }[];
  /** Reserved but never started because an earlier child failed under stopOnError; their reservations are released. */
  skipped: string[];
  /** Children that took one of the template's warm processes: the caller may start a refill (`warmTemplate`). */
  warmTaken: number;
  wallMs: number;
}

/**
 * Forks `count` children in parallel under a concurrency limit. Validation and the reservation of every name and
 * address happen once for the batch, before anything is created; after that a failed child is rolled back alone
 * and reported, the others stand (or, with `stopOnError`, the children not yet started are released).
 */
export async function forkChildren(deps: VmDeps, options: ForkBatchOptions): Promise<ForkBatchResult> {
  if (options.concurrency !== undefined && (!Number.isInteger(options.concurrency) || options.concurrency < 1)) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `concurrency must be a whole number ≥ 1, got ${String(options.concurrency)}`);
  }
  const actor = await actorFor('fork');
  // a pre-registered child has overlays of its own and no QEMU: it never takes a warm process
  const plan = await planFork(deps, { ...options, useWarm: options.registerOnly ? false : options.useWarm }, actor);
  faultPoint('fork.planned');
  const t0 = performance.now();
  const limit = Math.max(1, Math.min(options.concurrency ?? availableParallelism(), plan.children.length));
  const result: ForkBatchResult = { template: options.template, network: plan.network, children: [], registered: [], failed: [], skipped: [], warmTaken: plan.warmTaken, wallMs: 0 };
  const queue = [...plan.children];
  let stop = false;
  const one = async (reserved: ReservedChild): Promise<void> => {
    options.onStart?.(reserved.name);
    if (options.registerOnly) {
      await registerChild(deps, plan.template, reserved, actor);
      result.registered.push(reserved.name);
      return;
    }
    const child = await forkChild(deps, plan.template, reserved, actor, {
      ...(options.customize ? { customize: options.customize } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.awaitKicks !== undefined ? { awaitKicks: options.awaitKicks } : {}),
    });
    result.children.push(child);
    options.onChild?.(child);
  };
  const worker = async (): Promise<void> => {
    for (let reserved = queue.shift(); reserved !== undefined; reserved = queue.shift()) {
      if (stop || options.signal?.aborted) {
        await rollbackVm(deps, reserved.name, actor, undefined);
        result.skipped.push(reserved.name);
        continue;
      }
      try {
        await one(reserved);
      } catch (err) {
        const error = toVmforkError(err, 'VMFORK_FORK_FAILED');
        result.failed.push({ name: reserved.name, error: error.toJSON() });
        options.onChild?.({ name: reserved.name, error });
        if (options.stopOnError) stop = true;
      }
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  const order = (a: { name: string } | string, b: { name: string } | string): number =>
    plan.names.indexOf(typeof a === 'string' ? a : a.name) - plan.names.indexOf(typeof b === 'string' ? b : b.name);
  result.children.sort(order);
  result.registered.sort(order);
  result.skipped.sort(order);
  result.wallMs = Math.round(performance.now() - t0);
  return result;
}
