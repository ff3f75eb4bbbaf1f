import { VmforkError, withContext, type ErrorCode } from '../errors.js';
import { availableMemoryMiB, freeSpace, requireDatastore } from '../host/index.js';
import { DEFAULT_NETWORK, freeCount, parseCidr } from '../network/index.js';
import { getNetwork, getPool, getReplica, getTemplate, listVms, type Db } from '../store/index.js';
import { formatBytes } from '../util/index.js';
import { childShape as poolShape } from '../replica/index.js';
import type { PoolSpec } from './spec.js';
import { invalidSpec, poolChildNames } from './spec.js';
import { checkPoolRefs } from './refs.js';
import { hostRooms, placementHosts, planPlacement } from './placement.js';
import { childDiskBytes, diskCommitments, diskOvercommit, replicaBytes as replicaSize } from './disk-budget.js';
import { hostBoundProblems, localHostLimits, type HostLimits } from './host-bounds.js';
import { OVERHEAD_MIB, pendingOfOthers, poolGrowth, type Pending, type PoolCapacityAsk } from './pending.js';

export { poolGrowth, type PoolCapacityAsk } from './pending.js';

/** The host as the check reads it (tests script it). */
export interface HostProbe {
  availableMiB(): Promise<number>;
  freeBytes(path: string): Promise<number>;
  /** The host-dependent spec bounds for a datastore at `path`. @default this host's */
  limits?(path: string): Promise<HostLimits>;
}

const LOCAL_HOST: HostProbe = { availableMiB: () => availableMemoryMiB(), freeBytes: async (path) => (await freeSpace(path)).freeBytes, limits: localHostLimits };

/**
 * THE capacity check of a pool, on every path (create, resize, power-on): memory, disk and addresses, before
 * anything is made. Memory: until the pool's template is ready, phase 1's clone and then the template's parent hold
 * their whole RAM, and at least one child must fit beside them (an on-demand pool with `min: 0` too); each forked
 * child dirties a quarter of its RAM. Disk: the replica (until the pool has one) and each reserved child's overlays on
 * the pool's datastore. Addresses: one free lease in the pool's network per reserved child. Each error names the
 * field at fault and says how many fit (`details.fit`, `details.asked`).
 *
 * Other pools count too: on the datastore, every pool's children at their overlays' possible size (disk-budget.ts,
 * with the operator's overcommit ratio); in memory and addresses, what other pools were accepted for and have not
 * made yet (pending.ts). Run inside the write transaction that accepts the work (`withWriteLock`), two creates
 * that together do not fit cannot both pass: the second sees the first's pool row.
 */
export async function checkPoolCapacity(db: Db, spec: PoolSpec, ask?: PoolCapacityAsk, host: HostProbe = LOCAL_HOST): Promise<void> {
  const want = ask ?? (await poolGrowth(db, spec));
  const pool = await getPool(db, spec.name);
  const replica = pool?.replica_id ? await getReplica(db, pool.replica_id) : undefined;
  const template = pool?.template_name ? await getTemplate(db, pool.template_name) : undefined;
  const pending = await pendingOfOthers(db, spec);
  await checkDisk(db, spec, want, replica?.state !== 'ready', host);
  await checkAddresses(db, spec, want, pending);
  await checkMemory(spec, want, template?.state !== 'ready', host, pending);
}

async function checkDisk(db: Db, spec: PoolSpec, want: PoolCapacityAsk, needsReplica: boolean, host: HostProbe): Promise<void> {
  if (want.reserve === 0) return;
  const store = await requireDatastore(db, spec.datastore);
  const [freeBytes, ratio, perChild, held] = await Promise.all([host.freeBytes(store.path), diskOvercommit(db), childDiskBytes(db, spec), diskCommitments(db, spec)]);
  const replicaBytes = needsReplica ? replicaSize(spec) : 0;
  // what the datastore may promise: its free bytes plus what the overlays already hold, times the ratio
  const budget = Math.floor((freeBytes + held.writtenBytes) * ratio);
  const promised = held.othersBytes + held.ownBytes;
  const over = ratio === 1 ? '' : ` (overcommit ${ratio})`;
  const counts = { freeBytes, ratio, budgetBytes: budget, promisedBytes: promised, perChildBytes: perChild };
  if (replicaBytes + promised > budget) {
    const field = spec.persistent ? 'disks.userData' : 'disks.disposable';
    throw fieldError('VMFORK_NO_SPACE', field, `the replica needs up to ${formatBytes(replicaBytes)} on datastore ${spec.datastore}; ${formatBytes(Math.max(0, budget - promised))} is left of ${formatBytes(budget)}${over} after other pools' disks`, { fit: 0, asked: want.reserve, ...counts, neededBytes: replicaBytes });
  }
  const fit = Math.floor((budget - promised - replicaBytes) / perChild);
  if (fit < want.reserve) {
    const message = `${want.reserve} children's disks (${formatBytes(perChild)} each at full size${replicaBytes ? `, after the replica's ${formatBytes(replicaBytes)}` : ''}) on datastore ${spec.datastore}: ${formatBytes(budget)}${over}${promised ? `, ${formatBytes(promised)} of it promised to existing children,` : ''} holds ${fit}`;
    throw fieldError('VMFORK_NO_SPACE', want.field ?? 'size.max', message, { fit, asked: want.reserve, ...counts, neededBytes: replicaBytes + want.reserve * perChild });
  }
}

async function checkAddresses(db: Db, spec: PoolSpec, want: PoolCapacityAsk, pending: Pending): Promise<void> {
  if (want.reserve === 0) return;
  // the default network is created on first use: until then all of its range is free; other pools' accepted
  // children take theirs later, so they are not free for this one
  const leasable = (await getNetwork(db, spec.network)) ? (await freeCount(db, spec.network)).free : spec.network === DEFAULT_NETWORK.name ? 2 ** (32 - parseCidr(DEFAULT_NETWORK.cidr).prefix) - 3 : 0;
  const free = Math.max(0, leasable - pending.addresses);
  if (free < want.reserve) {
    throw fieldError('VMFORK_NETWORK_EXHAUSTED', want.field ?? 'size.max', `${want.reserve} children need an address each; network ${spec.network} has ${free} free`, { fit: free, asked: want.reserve, network: spec.network });
  }
}

async function checkMemory(spec: PoolSpec, want: PoolCapacityAsk, needsTemplate: boolean, host: HostProbe, pending: Pending): Promise<void> {
  const { memoryMiB } = poolShape(spec);
  const boot = want.boot ?? 0;
  // no template yet: phase 1's clone, then the template's parent, hold their whole RAM, and one child must fit beside
  const fork = needsTemplate ? Math.max(1, want.fork) : want.fork;
  if (fork + boot === 0) return;
  const wholeMiB = memoryMiB + OVERHEAD_MIB;
  const perChildMiB = Math.ceil(memoryMiB / 4) + OVERHEAD_MIB;
  const availMiB = (await host.availableMiB()) - pending.memoryMiB - (needsTemplate ? wholeMiB : 0);
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
 * what the spec names exists (image, network, datastore), the host-dependent bounds of its fields (host-bounds.ts),
 * its new child names are free, and the capacity check. Call it inside the transaction that accepts the work.
 */
export async function checkPoolFits(db: Db, spec: PoolSpec, host: HostProbe = LOCAL_HOST): Promise<void> {
  if (spec.placement) return checkPlacedFits(db, spec);
  await checkSpecBounds(db, spec, host);
  const others = new Set((await listVms(db)).filter((v) => v.pool_name !== spec.name).map((v) => v.name));
  const clash = poolChildNames(spec).slice(0, spec.size.max).find((n) => others.has(n));
  if (clash) throw fieldError('VMFORK_VM_EXISTS', 'naming', `child name "${clash}" is already a VM of this data dir`);
  await checkPoolCapacity(db, spec, undefined, host);
}

/**
 * checkPoolFits of a pool placed over hosts: what it names exists (its hosts, each with the datastore), its new
 * names are free in the fleet, the network has their addresses, and the hosts' room (as their agents reported it)
 * holds every child it would add (placement.ts), with a template's parent beside them on each host.
 */
async function checkPlacedFits(db: Db, spec: PoolSpec): Promise<void> {
  await checkPoolRefs(db, spec);
  const hosts = await placementHosts(db, spec);
  const vms = await listVms(db);
  const clash = poolChildNames(spec).slice(0, spec.size.max).find((n) => vms.some((v) => v.name === n && v.pool_name !== spec.name));
  if (clash) throw fieldError('VMFORK_VM_EXISTS', 'naming', `child name "${clash}" is already a VM of this fleet`);
  const want = await poolGrowth(db, spec);
  await checkAddresses(db, spec, want, await pendingOfOthers(db, spec));
  const has = new Set(vms.filter((v) => v.pool_name === spec.name).map((v) => v.name));
  const missing = poolChildNames(spec).slice(0, spec.size.max).filter((n) => !has.has(n));
  planPlacement(missing, await hostRooms(db, spec, hosts, () => true), spec.placement?.strategy ?? 'spread');
}

/**
 * What a spec names exists (image, network, datastore: 404 naming the field), and its fields are within this host's
 * bounds (400 naming each bound). Every path that accepts a spec (create, resize, push) runs it before anything.
 */
export async function checkSpecBounds(db: Db, spec: PoolSpec, host: HostProbe = LOCAL_HOST): Promise<void> {
  await checkPoolRefs(db, spec);
  const store = await requireDatastore(db, spec.datastore);
  const bounds = hostBoundProblems(spec, await (host.limits ?? localHostLimits)(store.path));
  if (bounds.length) throw invalidSpec(bounds);
}

function fieldError(code: ErrorCode, field: string, message: string, extra: Record<string, unknown> = {}): VmforkError {
  return withContext(new VmforkError(code, message), `pool spec: ${field}`, { details: { problems: [{ path: field, message }], field, ...extra } });
}
