import { VmforkError, withContext, type ErrorCode } from '../errors.js';
import { availableMemoryMiB, freeSpace, requireDatastore } from '../host/index.js';
import { DEFAULT_NETWORK, freeCount, parseCidr } from '../network/index.js';
import { getNetwork, getPool, getReplica, getTemplate, listVms, poolVms, type Db } from '../store/index.js';
import { formatBytes, parseSize } from '../util/index.js';
import { childShape as poolShape } from '../replica/index.js';
import type { PoolSpec } from './spec.js';
import { poolChildNames } from './spec.js';
import { checkPoolRefs } from './refs.js';
import { isMade, targetActive } from './converge.js';

/** QEMU's own memory per running VM. */
const OVERHEAD_MIB = 64;
/** What a child's overlays are budgeted on disk when it is reserved (the fork engine's own figure). */
export const CHILD_OVERLAY_BYTES = 64 * 1024 ** 2;

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

/** The host as the check reads it (tests script it). */
export interface HostProbe {
  availableMiB(): Promise<number>;
  freeBytes(path: string): Promise<number>;
}

const LOCAL_HOST: HostProbe = { availableMiB: () => availableMemoryMiB(), freeBytes: async (path) => (await freeSpace(path)).freeBytes };

/**
 * What converging `spec` adds from the store's current state (the same arithmetic as converge): a new pool forks its
 * up-front children (or on-demand `min` and spares) and registers the rest; a resize only what it adds.
 */
export async function poolGrowth(db: Db, spec: PoolSpec): Promise<PoolCapacityAsk> {
  const names = poolChildNames(spec).slice(0, spec.size.max);
  const kept = (await poolVms(db, spec.name)).filter((v) => names.includes(v.name));
  let active = kept.filter(isMade).length;
  const target = targetActive(spec, kept.filter((v) => v.claimed_at !== null).length);
  const topUp = Math.min(kept.filter((v) => v.state === 'registered' && v.claim_state === 'unclaimed').length, Math.max(0, target - active));
  active += topUp;
  const missing = names.length - kept.length;
  return { fork: topUp + Math.min(missing, Math.max(0, target - active)), reserve: missing };
}

/**
 * THE capacity check of a pool, on every path (create, resize, power-on): memory, disk and addresses, before
 * anything is made. Memory: until the pool's template is ready, phase 1's clone and then the template's parent hold
 * their whole RAM, and at least one child must fit beside them (an on-demand pool with `min: 0` too); each forked
 * child dirties a quarter of its RAM. Disk: the replica (until the pool has one) and each reserved child's overlays on
 * the pool's datastore. Addresses: one free lease in the pool's network per reserved child. Each error names the
 * field at fault and says how many fit (`details.fit`, `details.asked`).
 */
export async function checkPoolCapacity(db: Db, spec: PoolSpec, ask?: PoolCapacityAsk, host: HostProbe = LOCAL_HOST): Promise<void> {
  const want = ask ?? (await poolGrowth(db, spec));
  const pool = await getPool(db, spec.name);
  const replica = pool?.replica_id ? await getReplica(db, pool.replica_id) : undefined;
  const template = pool?.template_name ? await getTemplate(db, pool.template_name) : undefined;
  await checkDisk(db, spec, want, replica?.state !== 'ready', host);
  await checkAddresses(db, spec, want);
  await checkMemory(spec, want, template?.state !== 'ready', host);
}

async function checkDisk(db: Db, spec: PoolSpec, want: PoolCapacityAsk, needsReplica: boolean, host: HostProbe): Promise<void> {
  const store = await requireDatastore(db, spec.datastore);
  const freeBytes = await host.freeBytes(store.path);
  // the replica is a full copy: the system disk as the image left it plus the data disks as phase 1 filled them
  const replicaBytes = needsReplica ? 1024 ** 3 + parseSize(spec.disks.disposable) + (spec.persistent && spec.disks.userData ? parseSize(spec.disks.userData) : 0) : 0;
  if (replicaBytes > freeBytes) {
    const field = spec.persistent ? 'disks.userData' : 'disks.disposable';
    throw fieldError('VMFORK_NO_SPACE', field, `the replica needs up to ${formatBytes(replicaBytes)} on datastore ${spec.datastore}; ${formatBytes(freeBytes)} free`, { fit: 0, asked: want.reserve, freeBytes, neededBytes: replicaBytes });
  }
  const fit = Math.floor((freeBytes - replicaBytes) / CHILD_OVERLAY_BYTES);
  if (fit < want.reserve) {
    const message = `${want.reserve} children's overlays (${formatBytes(CHILD_OVERLAY_BYTES)} each${replicaBytes ? `, after the replica's ${formatBytes(replicaBytes)}` : ''}) on datastore ${spec.datastore}: ${formatBytes(freeBytes)} free holds ${fit}`;
    throw fieldError('VMFORK_NO_SPACE', want.field ?? 'size.max', message, { fit, asked: want.reserve, freeBytes, neededBytes: replicaBytes + want.reserve * CHILD_OVERLAY_BYTES });
  }
}

async function checkAddresses(db: Db, spec: PoolSpec, want: PoolCapacityAsk): Promise<void> {
  if (want.reserve === 0) return;
  // the default network is created on first use: until then all of its range is free
  const free = (await getNetwork(db, spec.network)) ? (await freeCount(db, spec.network)).free : spec.network === DEFAULT_NETWORK.name ? 2 ** (32 - parseCidr(DEFAULT_NETWORK.cidr).prefix) - 3 : 0;
  if (free < want.reserve) {
    throw fieldError('VMFORK_NETWORK_EXHAUSTED', want.field ?? 'size.max', `${want.reserve} children need an address each; network ${spec.network} has ${free} free`, { fit: free, asked: want.reserve, network: spec.network });
  }
}

async function checkMemory(spec: PoolSpec, want: PoolCapacityAsk, needsTemplate: boolean, host: HostProbe): Promise<void> {
  const { memoryMiB } = poolShape(spec);
  const boot = want.boot ?? 0;
  // no template yet: phase 1's clone, then the template's parent, hold their whole RAM, and one child must fit beside
  const fork = needsTemplate ? Math.max(1, want.fork) : want.fork;
  if (fork + boot === 0) return;
  const wholeMiB = memoryMiB + OVERHEAD_MIB;
  const perChildMiB = Math.ceil(memoryMiB / 4) + OVERHEAD_MIB;
  const availMiB = (await host.availableMiB()) - (needsTemplate ? wholeMiB : 0);
  const parent = needsTemplate ? ` beside the template's parent (${memoryMiB} MiB)` : '';
  const refuse = (fit: number, asked: number, what: string): VmforkError => {
    // not even one: the child's size is at fault, not how many
    const field = want.field ?? (fit === 0 ? 'memory' : spec.provisioning === 'up-front' ? 'size.max' : 'size.min');
    return fieldError('VMFORK_INSUFFICIENT_MEMORY', field, `${asked} children of ${memoryMiB} MiB to ${what}${parent}; this host's memory holds ${fit}`, { fit, asked, availableMiB: availMiB });
  };
  const bootFit = Math.max(0, Math.floor(availMiB / wholeMiB));
  if (bootFit < boot) throw refuse(bootFit, boot, 'boot from their own disks');
  const fit = Math.max(0, Math.floor((availMiB - boot * wholeMiB) / perChildMiB));
  if (fit < fork) throw refuse(fit, fork, 'fork');
}

/**
 * Every check a pool needs before anything is made for it (a 4xx, never a half-made pool), at create and at a resize:
 * what the spec names exists (image, network, datastore), its new child names are free, and the capacity check.
 */
export async function checkPoolFits(db: Db, spec: PoolSpec, host: HostProbe = LOCAL_HOST): Promise<void> {
  await checkPoolRefs(db, spec);
  const others = new Set((await listVms(db)).filter((v) => v.pool_name !== spec.name).map((v) => v.name));
  const clash = poolChildNames(spec).slice(0, spec.size.max).find((n) => others.has(n));
  if (clash) throw fieldError('VMFORK_VM_EXISTS', 'naming', `child name "${clash}" is already a VM of this data dir`);
  await checkPoolCapacity(db, spec, undefined, host);
}

function fieldError(code: ErrorCode, field: string, message: string, extra: Record<string, unknown> = {}): VmforkError {
  return withContext(new VmforkError(code, message), `pool spec: ${field}`, { details: { problems: [{ path: field, message }], field, ...extra } });
}
