import { randomBytes } from 'node:crypto';
import { VmforkError, toVmforkError, withContext } from '../errors.js';
import { actorFor, checkHostCapacity } from '../host/index.js';
import { allocateLeaseIn, ensureNetworkNamed, plugLease, type Lease } from '../network/index.js';
import { terminateProcess, type LaunchedProcess } from '../qemu/index.js';
import type { Actor } from '../state/index.js';
import { getSetting, getTemplate, insertVm, putSetting, requireTemplate, templateWarmVms, transition, withWriteLock } from '../store/index.js';
import { assertTemplateHere, readyTemplate, warmTargetKey, type ReadyTemplate } from '../template/index.js';
import { destroyVm, hereHost, reconcileVm, rollbackVm, startVmProcess, vmPaths, type VmDeps, type VmPaths } from '../vm/index.js';
import { makeOverlays } from './child.js';
import { childSpec } from './child-spec.js';
import { assertMatchesTemplate } from './plan.js';
import type { VmSpec } from '../spec/index.js';

/** At most this many warm processes per template: each one holds a QEMU (measured in docs/forking.md). */
export const MAX_WARM = 64;

export interface WarmOptions {
  /** The number of warm processes to keep (recorded: refills keep it). Undefined: refill to the recorded number. */
  count?: number;
  /** Network whose addresses the warm processes hold; a fork takes only those of its own network. @default 'default' */
  network?: string;
}

export interface WarmResult {
  template: string;
  target: number;
  /** Warm processes waiting now. */
  warm: string[];
  launched: string[];
  /** Removed: surplus over the target, or failed ones (their QEMU had died). */
  removed: string[];
  failed: { name: string; error: ReturnType<VmforkError['toJSON']> }[];
}

interface ReservedWarm {
  name: string;
  lease: Lease;
  paths: VmPaths;
  spec: VmSpec;
}

/**
 * Keeps `count` QEMU processes launched and waiting at `-incoming defer` for the template — each with its overlays,
 * tap, address, MAC, vmgenid and uuid assigned, exactly as a child's — so a fork that takes one only loads the
 * device state and continues (`migrate-incoming` + `cont`). Records (role `warm`) are reserved in one write
 * transaction counting the ones that exist or are being made, so concurrent refills never overshoot; failed ones
 * (their QEMU died) and any surplus are removed. Without `count`, refills to the recorded target (what a fork
 * starts in the background after taking some).
 */
export async function warmTemplate(deps: VmDeps, template: string, options: WarmOptions = {}): Promise<WarmResult> {
  const { db } = deps;
  if (options.count !== undefined && (!Number.isInteger(options.count) || options.count < 0 || options.count > MAX_WARM)) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `--count must be a whole number from 0 to ${MAX_WARM}, got ${String(options.count)}`, { details: { count: options.count } });
  }
  const t = readyTemplate(await requireTemplate(db, template));
  assertTemplateHere(hereHost(deps), t.row);
  if (options.count !== undefined) await putSetting(db, warmTargetKey(template), String(options.count));
  const target = Number((await getSetting(db, warmTargetKey(template))) ?? '0');
  const result: WarmResult = { template, target, warm: [], launched: [], removed: [], failed: [] };
  const live: string[] = [];
  for (const row of await templateWarmVms(db, template)) {
    const now = await reconcileVm(deps, row);
    if (now.state === 'failed') {
      await destroyVm(deps, now.name);
      result.removed.push(now.name);
    } else if (now.state === 'warm') live.push(now.name);
  }
  // newest first: the oldest are the most likely to have their pages in the host's cache
  for (const name of live.slice(target).reverse()) {
    await destroyVm(deps, name).then(() => result.removed.push(name), () => undefined);
  }
  if (target > live.length) {
    await assertMatchesTemplate(t);
    const network = await ensureNetworkNamed(db, options.network, hereHost(deps));
    await checkHostCapacity({ dir: deps.home.root, diskBytes: (target - live.length) * 64 * 1024 ** 2, memoryMiB: 0, count: target - live.length, overheadMiB: 64 });
    const actor = await actorFor('warm');
    for (const w of await reserveWarm(deps, t, network, target, actor)) {
      try {
        await launchWarm(deps, t, w, actor);
        result.launched.push(w.name);
      } catch (err) {
        result.failed.push({ name: w.name, error: toVmforkError(err, 'VMFORK_FORK_FAILED').toJSON() });
      }
    }
  }
  result.warm = (await templateWarmVms(db, template)).filter((r) => r.state === 'warm').map((r) => r.name);
  return result;
}

/** The missing records, reserved in one transaction against what exists or is being made (by any process). */
async function reserveWarm(deps: VmDeps, t: ReadyTemplate, network: string, target: number, actor: Actor): Promise<ReservedWarm[]> {
  return withWriteLock(deps.db, async (conn) => {
    if ((await getTemplate(conn, t.row.name))?.state !== 'ready') return [];
    const present = (await templateWarmVms(conn, t.row.name)).filter((r) => r.state === 'warm' || r.state === 'creating').length;
    const out: ReservedWarm[] = [];
    for (let i = present; i < target; i++) {
      const name = warmName(t.row.name);
      const lease = await allocateLeaseIn(conn, { network, vmName: name, host: hereHost(deps) });
      const paths = vmPaths(deps.home.vms, name);
      const spec = childSpec(t, name, paths, lease);
      const now = new Date().toISOString();
      await insertVm(conn, { name, host_id: hereHost(deps), image_name: t.record.image, template_name: t.row.name, pool_name: null, state: 'creating', role: 'warm', dir: paths.dir, spec_json: JSON.stringify(spec), last_error: null, created_at: now, updated_at: now }, actor);
      out.push({ name, lease, paths, spec });
    }
    return out;
  });
}

/**
 * Tap, overlays, QEMU at -incoming defer in the network's namespace, then `warm`. The template is checked again
 * once the QEMU runs: a `template rm` that started meanwhile removed the warm records it saw, and must not be
 * outlived by one it did not see.
 */
async function launchWarm(deps: VmDeps, t: ReadyTemplate, w: ReservedWarm, actor: Actor): Promise<void> {
  let launched: LaunchedProcess | undefined;
  try {
    await plugLease(w.lease);
    await makeOverlays(t, w);
    launched = await startVmProcess(deps, w.name, w.spec, w.paths, { netns: w.lease.netns });
    if ((await getTemplate(deps.db, t.row.name))?.state !== 'ready') {
      throw new VmforkError('VMFORK_TEMPLATE_NOT_READY', `template ${t.row.name} is being removed`);
    }
    await transition(deps.db, 'vms', w.name, 'creating', 'warm', actor);
  } catch (err) {
    // the record may be gone already (a template rm tore it down): the QEMU this call started goes in any case
    if (launched) await terminateProcess(launched.pid, launched.startTime, { graceMs: 500 }).catch(() => undefined);
    const leftAlone = await rollbackVm(deps, w.name, actor, err, launched);
    throw leftAlone ? withContext(err, `warm process ${w.name}`, { suffix: `\n${leftAlone}` }) : err;
  }
}

/** `<template>-warm-<6 hex>`: an RFC 1123 label that a child's `{n}` numbering never mistakes for one of its own. */
export function warmName(template: string): string {
  return `${template.slice(0, 50)}-warm-${randomBytes(3).toString('hex')}`;
}
