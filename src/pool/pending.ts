import { getTemplate, listPoolRows, liveQueueTasks, poolVms, type Db } from '../store/index.js';
import { childShape } from '../replica/index.js';
import { isMade, targetActive } from './converge.js';
import { acceptedMax, liveReservedMax } from './disk-budget.js';
import type { PoolSpec } from './spec.js';
import { parsePoolSpec, poolChildNames } from './spec.js';
import { OVERHEAD_MIB } from './spec-limits.js';

export { OVERHEAD_MIB };


/** What an operation on a pool adds to the host, in children. */
export interface PoolCapacityAsk {
  /** Children forked from the pool's template: each dirties a quarter of its RAM (the rest is shared). */
  fork: number;
  /** Children that get a new name: each takes an address and its overlays (forked or pre-registered). */
  reserve: number;
  /** Children booted cold from their own disks (a powered-off persistent child): each holds its whole RAM. @default 0 */
  boot?: number;
  /** The spec field (or request field) a memory shortfall is blamed on. @default size.max (up-front) or size.min */
  field?: string;
}

/**
 * What converging `spec` adds from the store's current state (the same arithmetic as converge): a new pool forks its
 * up-front children (or on-demand `min` and spares) and registers the rest; a resize only what it adds.
 */
export async function poolGrowth(db: Db, spec: PoolSpec): Promise<PoolCapacityAsk> {
  const names = new Set(poolChildNames(spec).slice(0, spec.size.max));
  const kept = (await poolVms(db, spec.name)).filter((v) => names.has(v.name));
  let active = kept.filter(isMade).length;
  const target = targetActive(spec, kept.filter((v) => v.claimed_at !== null).length);
  const topUp = Math.min(kept.filter((v) => v.state === 'registered' && v.claim_state === 'unclaimed').length, Math.max(0, target - active));
  active += topUp;
  const missing = names.size - kept.length;
  return { fork: topUp + Math.min(missing, Math.max(0, target - active)), reserve: missing };
}

/** Memory and addresses other pools were promised and do not hold yet. */
export interface Pending {
  memoryMiB: number;
  /** Addresses in `spec`'s network. */
  addresses: number;
}

/**
 * The work other pools were accepted for and have not finished (provisioning, or a task live in their queue): what their converge
 * still forks (and the template parent it boots, until their template is ready) and the addresses it still leases.
 * Memory a finished pool holds is already out of MemAvailable; this is the memory it will take. Read in the caller's
 * transaction, so of two creates the second sees the first.
 */
export async function pendingOfOthers(db: Db, spec: PoolSpec): Promise<Pending> {
  const out: Pending = { memoryMiB: 0, addresses: 0 };
  for (const row of await listPoolRows(db)) {
    // a pool just accepted is `provisioning` (a resize just accepted has its reservation) before its task is
    // queued: it counts from its insert on
    if (row.name === spec.name) continue;
    if (row.state !== 'provisioning' && (await liveQueueTasks(db, row.name)).length === 0 && (await liveReservedMax(db, row.name)) === undefined) continue;
    const parsed = parsePoolSpec(JSON.parse(row.spec_json));
    const other = { ...parsed, size: { ...parsed.size, max: await acceptedMax(db, row, parsed) } };
    const growth = await poolGrowth(db, other);
    const { memoryMiB } = childShape(other);
    const template = row.template_name ? await getTemplate(db, row.template_name) : undefined;
    out.memoryMiB += growth.fork * (Math.ceil(memoryMiB / 4) + OVERHEAD_MIB) + (template?.state === 'ready' ? 0 : memoryMiB + OVERHEAD_MIB);
    if (other.network === spec.network) out.addresses += growth.reserve;
  }
  return out;
}
