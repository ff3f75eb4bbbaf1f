import { VmforkError } from '../errors.js';
import { actorFor } from '../host/index.js';
import { waitPostcopyDone } from '../qemu/index.js';
import { requireVm } from '../store/index.js';
import { promoteVm, vmPathsIn, type VmDeps } from '../vm/index.js';
import { forkChild, type ChildCustomizer, type ForkedChild, type LazySource } from './child.js';
import { planFork } from './plan.js';

export interface LazyForkRequest {
  /** The template, on another host (its record is the fleet's). */
  template: string;
  name: string;
  network?: string;
  pool?: string;
  customize?: ChildCustomizer;
  signal?: AbortSignal;
  source: LazySource;
}

/**
 * Forks one child on a host that has neither the template's files nor its replica yet (issue 14 item 8,
 * docs/lazy-replicas.md): SnowFlock's idea on QEMU. Its disks are overlays over the source host's, read through NBD
 * and copied on read; its memory comes by postcopy from the source host's memory server, page by page as the guest
 * touches it. Identity and customization are a fork's, unchanged. Planned and rolled back like any child.
 */
export async function forkLazy(deps: VmDeps, req: LazyForkRequest): Promise<ForkedChild> {
  const actor = await actorFor('fork');
  const plan = await planFork(deps, { template: req.template, count: 1, names: [req.name], lazy: true, useWarm: false, ...(req.network ? { network: req.network } : {}), ...(req.pool ? { pool: req.pool } : {}) }, actor);
  const [reserved] = plan.children;
  if (!reserved) throw new VmforkError('VMFORK_INTERNAL', 'a fork plan of one child reserved none');
  return forkChild(deps, plan.template, reserved, actor, {
    lazy: req.source,
    ...(req.customize ? { customize: req.customize } : {}),
    ...(req.signal ? { signal: req.signal } : {}),
  });
}

export interface SettledLazy {
  /** From the call to the last page in (postcopy `completed`). */
  memoryMs: number;
  /** From the call until every disk holds all its data itself (its NBD backing gone). */
  disksMs: number;
  /** Bytes the disks' mirrors moved. */
  diskBytes: number;
}

/**
 * A lazy child made independent of the source host: waits for the last page of its memory, then promotes it
 * (src/vm/promote.ts, mirror mode): each disk is mirrored into a new image in its own directory, what the export
 * says is zero skipped, and the drive pivots onto it, so no NBD backing is left in its chain and its record names
 * the new files (and no template any more: nothing of it is read). After this the relays may end.
 */
export async function settleLazy(deps: VmDeps, name: string, options: { timeoutMs?: number } = {}): Promise<SettledLazy> {
  const t0 = performance.now();
  const vm = await requireVm(deps.db, name);
  await waitPostcopyDone(vmPathsIn(vm.dir).qmp, { timeoutMs: options.timeoutMs ?? 10 * 60_000 });
  const memoryMs = Math.round(performance.now() - t0);
  const promoted = await promoteVm(deps, name, { mirror: true });
  return { memoryMs, disksMs: Math.round(performance.now() - t0), diskBytes: promoted.disks.reduce((sum, d) => sum + d.bytes, 0) };
}
