import { dirname, resolve } from 'node:path';
import { VmforkError } from '../errors.js';
import { freeSpace, QEMU_IMG_BINARY, requireDatastore, runQemuTool } from '../host/index.js';
import { decodeVmSpec } from '../spec/index.js';
import type { VmState } from '../state/index.js';
import { listCheckpoints, type VmRow } from '../store/index.js';
import { formatBytes } from '../util/index.js';
import { getVmReconciled } from './lifecycle.js';
import { promotedDir } from './promote-files.js';
import type { VmDeps } from './vm-deps.js';

/** Block jobs run in a live QEMU: only a running VM is promoted (a stopped one could be flattened offline, later). */
export const PROMOTE_FROM: readonly VmState[] = ['running'];

/** Room left over what the data itself needs: qcow2 metadata (L2 tables, refcounts) of the grown image. */
const METADATA_MARGIN_BYTES = 64 * 1024 ** 2;

/** One layer of a disk's backing chain as `qemu-img info --backing-chain` reports it, top first. */
export interface ChainLayer {
  path: string;
  virtualSize: number;
  actualSize: number;
  /** qcow2 extended_l2 (vmfork's overlays have it): QEMU 7.2's block-stream aborts on such a top (see planPromote). */
  subclusters: boolean;
}

export interface PromoteDisk {
  id: string;
  /** The active layer (the child's own overlay). */
  path: string;
  chain: ChainLayer[];
  /** Bytes this disk's promotion writes: the layers below the top (streamed) or all of them (mirrored), at most the disk's size. */
  needBytes: number;
}

export interface PromoteRequest {
  /** Mirror the disks to this datastore and pivot; without it the backing chain is streamed into the child's own images. */
  datastore?: string;
  /** Cap on each block job's speed, MiB/s; none: as fast as the host allows. */
  rateMiBs?: number;
  /**
   * Mirror even a top a stream could fill: a lazy child's disk over NBD (src/fork/lazy.ts), where a stream's one
   * request at a time pays the network's round trip for every chunk, zeros included; a mirror keeps several in
   * flight and skips what the export's block status says is zero.
   */
  mirror?: boolean;
}

export interface PromotePlan {
  vm: VmRow;
  mode: 'stream' | 'mirror';
  /** Where a mirror writes the new images: `<datastore>/promoted/<vm>/`, or the VM's own directory. */
  target?: { datastore?: string; dir: string };
  /** Disks with a backing chain (the ones a promotion moves). */
  disks: PromoteDisk[];
  needBytes: number;
  freeBytes: number;
}

/** The backing chain of an image QEMU may hold open (`-U`: the sizes are read, never written). */
export async function backingChain(path: string): Promise<ChainLayer[]> {
  const r = await runQemuTool(QEMU_IMG_BINARY, ['info', '--backing-chain', '-U', '--output=json', resolve(path)], { errorCode: 'VMFORK_QEMU_IMG_FAILED', timeoutMs: 60_000 });
  const layers = JSON.parse(r.stdout) as { filename: string; 'virtual-size': number; 'actual-size'?: number; 'format-specific'?: { data?: { 'extended-l2'?: boolean } } }[];
  return layers.map((l) => ({ path: l.filename, virtualSize: l['virtual-size'], actualSize: l['actual-size'] ?? 0, subclusters: l['format-specific']?.data?.['extended-l2'] === true }));
}

/**
 * The bytes a disk's promotion writes. A stream copies what the backing layers hold into the top; a mirror writes
 * the whole chain's content to a new image. Allocated bytes overcount (metadata, data the top already shadows), so
 * this is an upper bound, capped by the disk's virtual size.
 */
export function bytesToMove(chain: readonly ChainLayer[], mode: 'stream' | 'mirror'): number {
  const layers = mode === 'stream' ? chain.slice(1) : chain;
  const allocated = layers.reduce((sum, l) => sum + l.actualSize, 0);
  return Math.min(allocated, chain[0]?.virtualSize ?? allocated);
}

/** VMFORK_NO_SPACE when `need` (plus the metadata margin) does not fit in `free`; `where` names the place. */
export function assertRoom(needBytes: number, freeBytes: number, where: string, details: Record<string, unknown>): void {
  if (needBytes + METADATA_MARGIN_BYTES <= freeBytes) return;
  throw new VmforkError('VMFORK_NO_SPACE', `promotion needs up to ${formatBytes(needBytes + METADATA_MARGIN_BYTES)} on ${where}; ${formatBytes(freeBytes)} free`, {
    details: { ...details, neededBytes: needBytes + METADATA_MARGIN_BYTES, freeBytes },
  });
}

function assertState(vm: VmRow): void {
  if (PROMOTE_FROM.includes(vm.state)) return;
  throw new VmforkError('VMFORK_VM_STATE', `VM ${vm.name} is ${vm.state}; a promotion needs it ${PROMOTE_FROM.join(' or ')}`, {
    details: { vm: vm.name, state: vm.state, allowed: [...PROMOTE_FROM] },
  });
}

/**
 * Every check of a promotion, before anything is touched, in the order a user fixes them: the rate, the VM and its
 * state, the datastore, checkpoints, whether anything is linked at all, and room for what will be written.
 */
export async function planPromote(deps: VmDeps, name: string, request: PromoteRequest): Promise<PromotePlan> {
  if (request.rateMiBs !== undefined && !(Number.isFinite(request.rateMiBs) && request.rateMiBs > 0)) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `rate must be a positive number of MiB/s, not ${String(request.rateMiBs)}`, { details: { rateMiBs: request.rateMiBs } });
  }
  const vm = await getVmReconciled(deps, name);
  assertState(vm);
  const store = request.datastore === undefined ? undefined : await requireDatastore(deps.db, request.datastore);
  const checkpoints = (await listCheckpoints(deps.db, name)).map((c) => c.label);
  if (checkpoints.length) {
    // their frozen layers sit on the same backing chain: promoted, the VM would still need its template through them
    throw new VmforkError('VMFORK_VM_STATE', `VM ${name} has checkpoints (${checkpoints.join(', ')}) whose disk layers stay backed by its template; a promoted VM has none`, {
      details: { vm: name, state: vm.state, checkpoints, allowed: [...PROMOTE_FROM] },
    });
  }
  const disks: PromoteDisk[] = [];
  for (const d of decodeVmSpec(vm.spec_json).disks.filter((x) => !x.readOnly)) {
    const chain = await backingChain(d.path);
    if (chain.length > 1) disks.push({ id: d.id, path: d.path, chain, needBytes: 0 });
  }
  // QEMU 7.2's block-stream copies on read, and its copy-on-read asserts (`skip_bytes < pnum`, block/io.c) on a top
  // image with subclusters partly allocated — it killed a child's QEMU here. A mirror reads no such path: a top with
  // subclusters is mirrored into a new image beside it and the drive pivots onto that.
  const mode = store || request.mirror || disks.some((d) => d.chain[0]?.subclusters) ? 'mirror' : 'stream';
  for (const d of disks) d.needBytes = bytesToMove(d.chain, mode);
  if (!disks.length) throw new VmforkError('VMFORK_VM_FULL_CLONE', `VM ${name}'s disks have no backing file: it is a full clone already`, { details: { vm: name } });
  const needBytes = disks.reduce((sum, d) => sum + d.needBytes, 0);
  const place = store ? store.path : mode === 'mirror' ? vm.dir : dirname(disks[0]?.path ?? vm.dir);
  const { freeBytes } = await freeSpace(place);
  assertRoom(needBytes, freeBytes, store ? `datastore ${store.name} (${store.path})` : `the filesystem of ${name}'s disks (${place})`, {
    vm: name,
    ...(store ? { datastore: store.name } : {}),
    path: place,
  });
  const target = store ? { datastore: store.name, dir: promotedDir(store.path, name) } : mode === 'mirror' ? { dir: vm.dir } : undefined;
  return { vm, mode, ...(target ? { target } : {}), disks, needBytes, freeBytes };
}
