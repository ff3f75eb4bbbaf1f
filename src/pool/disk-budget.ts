import { stat } from 'node:fs/promises';
import { VmforkError } from '../errors.js';
import { getImage, getPoolReservation, getReplica, getSetting, listPoolRows, liveQueueTasks, poolVms, putSetting, type Db, type PoolRow, type VmRow } from '../store/index.js';
import { parseSize } from '../util/index.js';
import type { PoolSpec } from './spec.js';
import { parsePoolSpec } from './spec.js';

/**
 * Disk is accounted at each overlay's POSSIBLE size: a thin overlay starts at a few MiB but can grow to its disk's
 * full size, so pools that each fit today could together fill the datastore later. The operator may overcommit:
 * the possible sizes of every pool on a datastore may reach `ratio` × its capacity (free bytes plus what the
 * overlays already hold). 1.0 (the default) promises every child its whole disks; 2.0 bets half of them stay empty.
 */
export const DISK_OVERCOMMIT_SETTING = 'disk.overcommit';
export const DEFAULT_DISK_OVERCOMMIT = 1;
export const MAX_DISK_OVERCOMMIT = 100;

/** The operator's ratio (`vmfork serve --disk-overcommit`), from the store so every process reads the same. */
export async function diskOvercommit(db: Db): Promise<number> {
  const raw = await getSetting(db, DISK_OVERCOMMIT_SETTING);
  const ratio = raw === undefined ? DEFAULT_DISK_OVERCOMMIT : Number(raw);
  return Number.isFinite(ratio) && ratio > 0 ? ratio : DEFAULT_DISK_OVERCOMMIT;
}

/** Sets the ratio; anything but a number from 0.1 to 100 is VMFORK_INVALID_ARGUMENT naming the bound. */
export async function setDiskOvercommit(db: Db, value: string | number): Promise<number> {
  const ratio = Number(value);
  if (!Number.isFinite(ratio) || ratio < 0.1 || ratio > MAX_DISK_OVERCOMMIT) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `--disk-overcommit: a ratio from 0.1 to ${MAX_DISK_OVERCOMMIT}, got "${String(value)}"`, { details: { ratio: value } });
  }
  await putSetting(db, DISK_OVERCOMMIT_SETTING, String(ratio));
  return ratio;
}

/** One child's overlays at their possible size: the system disk's (the image's virtual size), the disposable and the user-data disk. */
export async function childDiskBytes(db: Db, spec: PoolSpec): Promise<number> {
  const system = (await getImage(db, spec.image))?.virtual_size ?? 0;
  return system + parseSize(spec.disks.disposable) + (spec.persistent && spec.disks.userData !== undefined ? parseSize(spec.disks.userData) : 0);
}

/** A replica is a full copy: the system disk as the image left it (budgeted 1 GiB) plus the data disks phase 1 filled. */
export function replicaBytes(spec: PoolSpec): number {
  return 1024 ** 3 + parseSize(spec.disks.disposable) + (spec.persistent && spec.disks.userData ? parseSize(spec.disks.userData) : 0);
}

/** How long a resize's reservation holds with no task recorded (its server died between the check and the queueing). */
const UNQUEUED_RESERVATION_MS = 5 * 60_000;

/**
 * The size a resize reserved for a pool while that resize is live: just accepted (its task not queued yet), or its
 * task queued or running. undefined once it ended (the spec then says the size) or never was.
 */
export async function liveReservedMax(db: Db, pool: string, now: number = Date.now()): Promise<number | undefined> {
  const r = await getPoolReservation(db, pool);
  if (!r) return undefined;
  if (r.task_id === null) return now - Date.parse(r.created_at) < UNQUEUED_RESERVATION_MS ? r.max : undefined;
  return (await liveQueueTasks(db, pool)).some((t) => t.id === r.task_id) ? r.max : undefined;
}

/** The size a pool is heading for: its spec's, or a larger one a live resize reserved or asks (accepted work). */
export async function acceptedMax(db: Db, row: PoolRow, spec: PoolSpec): Promise<number> {
  const resizes = (await liveQueueTasks(db, row.name)).filter((t) => t.kind === 'pool-resize');
  const asked = resizes.map((t) => Number((JSON.parse(t.input_json) as { max?: number }).max ?? 0));
  return Math.max(spec.size.max, (await liveReservedMax(db, row.name)) ?? 0, ...asked);
}

/** Bytes the overlays of these children already hold (they count in the datastore's used space, not its free). */
async function writtenBytes(vms: readonly VmRow[]): Promise<number> {
  let total = 0;
  for (const vm of vms) {
    let disks: { path?: string; readOnly?: boolean }[] = [];
    try {
      disks = (JSON.parse(vm.spec_json) as { disks?: typeof disks }).disks ?? [];
    } catch {
      continue;
    }
    for (const d of disks.filter((x) => x.path && !x.readOnly)) total += await stat(d.path as string).then((s) => s.blocks * 512, () => 0);
  }
  return total;
}

export interface DiskCommitments {
  /** Possible bytes of every other pool on the datastore (its children, its replica until ready). */
  othersBytes: number;
  /** Possible bytes of this pool's children that already exist. */
  ownBytes: number;
  /** What all those overlays already hold. */
  writtenBytes: number;
}

/** What the datastore has already promised, read in the caller's transaction so two creates see each other. */
export async function diskCommitments(db: Db, spec: PoolSpec): Promise<DiskCommitments> {
  let othersBytes = 0;
  const vms: VmRow[] = [];
  for (const row of await listPoolRows(db)) {
    if (row.name === spec.name) continue;
    const other = parsePoolSpec(JSON.parse(row.spec_json));
    if (other.datastore !== spec.datastore) continue;
    const replica = row.replica_id ? await getReplica(db, row.replica_id) : undefined;
    othersBytes += (await acceptedMax(db, row, other)) * (await childDiskBytes(db, other)) + (replica?.state === 'ready' ? 0 : replicaBytes(other));
    vms.push(...(await poolVms(db, row.name)));
  }
  const own = await poolVms(db, spec.name);
  vms.push(...own);
  return { othersBytes, ownBytes: own.length * (await childDiskBytes(db, spec)), writtenBytes: await writtenBytes(vms) };
}
