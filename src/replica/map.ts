import { createHash } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { runPhase1 } from '../customize/index.js';
import { VmforkError, withContext } from '../errors.js';
import { actorFor, ownerAlive } from '../host/index.js';
import { resolveImageBoot } from '../image/index.js';
import { convert } from '../qemu/index.js';
import type { Actor } from '../state/index.js';
import { deleteReplicaRow, findReplica, getReplica, getVm, insertReplica, replicaPools, transition, updateReplica, type ReplicaRow } from '../store/index.js';
import { sealFile, type FileRecord } from '../template/index.js';
import { destroyVm, diskFile, hereHost, type VmDeps } from '../vm/index.js';
import { faultPoint, waitUntil } from '../util/index.js';
import { requireDatastore } from '../host/index.js';
import { diskLayoutOf, phase1Digest, type ReplicaSpec } from './spec.js';

/** Reports what the replica step does (a task context fits). */
export interface StepReporter {
  step(name: string, percent?: number): Promise<void> | void;
  event(kind: string, message: string, data?: Record<string, unknown>): Promise<void> | void;
  /** A cancelled task: checked between steps (phase 1's scripts, each disk copied) and ends phase 1's and the template's waits; what was half made is rolled back. */
  signal?: AbortSignal;
}

/** How long a task waits for a replica another task is making (phase 1 and the copy; far more than either takes). */
const REPLICA_WAIT_MS = 60 * 60_000;

export interface ReplicaDisk extends FileRecord {
  id: string;
}

/** What phase 1 recorded about the replica it made. */
export interface Phase1Record {
  reboots: number;
  mounts: { home: string; tmp: string; swap: string };
  ms: Record<string, number>;
  copyMs: number;
}

/** A replica's id: its key in the map (image version, phase-1 digest, host, datastore), hashed. */
export function replicaId(imageVersion: string, digest: string, hostId: string, datastore: string): string {
  return createHash('sha256').update(`${imageVersion}\n${digest}\n${hostId}\n${datastore}`).digest('hex').slice(0, 12);
}

/** The replica map's key for a spec on this host, and the replica id derived from it. */
export async function replicaKey(deps: VmDeps, spec: ReplicaSpec): Promise<{ id: string; imageVersion: string; digest: string; hostId: string; datastore: string }> {
  const image = await resolveImageBoot(deps.db, spec.image);
  // the base disk's own digest: a rebuilt or re-imported image under the same name is another version
  const imageVersion = image.diskSha256 ? `sha256:${image.diskSha256}` : `path:${image.disk}`;
  const digest = phase1Digest(spec, imageVersion);
  const hostId = hereHost(deps);
  return { id: replicaId(imageVersion, digest, hostId, spec.datastore), imageVersion, digest, hostId, datastore: spec.datastore };
}

/**
 * The replica a pool's children come from: reused when the map has one for this image version, phase-1 digest,
 * host and datastore (no phase 1, no copy), waited for while another task makes it, made otherwise — phase 1 on an
 * internal clone, then a full copy of every disk (no backing file) onto the datastore, sealed read-only.
 */
export async function ensureReplica(deps: VmDeps, spec: ReplicaSpec, report: StepReporter): Promise<{ replica: ReplicaRow; reused: boolean }> {
  const key = await replicaKey(deps, spec);
  return findOrMake(deps, { ...key, image: spec.image }, report, 'no phase 1, no copy', (dir, actor) => makeReplica(deps, spec, key.id, dir, actor, report));
}

export interface ReplicaKey {
  id: string;
  image: string;
  imageVersion: string;
  digest: string;
  hostId: string;
  datastore: string;
}

/**
 * The map's one way to a replica, whoever makes it (phase 1 here, or a copy from another host): the ready one for
 * the key is reused; a half-made one whose maker died is rolled back and made again; one another task is making is
 * waited for; otherwise its record is inserted (compare-and-set on the key: of two makers one wins, the other
 * waits for it) and `make` fills it.
 */
export async function findOrMake(
  deps: VmDeps,
  key: ReplicaKey,
  report: StepReporter,
  reusedWhy: string,
  make: (dir: string, actor: Actor) => Promise<ReplicaRow>,
): Promise<{ replica: ReplicaRow; reused: boolean }> {
  const store = await requireDatastore(deps.db, key.datastore, key.hostId);
  const attempt = async (): Promise<{ replica: ReplicaRow; reused: boolean } | undefined> => {
    const found = await findReplica(deps.db, { image_version: key.imageVersion, phase1_digest: key.digest, host_id: key.hostId, datastore: key.datastore });
    if (found?.state === 'ready') {
      await report.event('replica', `replica ${found.id} reused: ${reusedWhy}`, { replica: found.id });
      return { replica: found, reused: true };
    }
    if (found?.state === 'creating' && !(await ownerAlive({ pid: found.owner_pid, startTime: found.owner_start_time, boot: found.owner_boot }))) {
      await healReplica(deps, found, await actorFor('replica-create'));
      return undefined;
    }
    // another task is making it (or removing it): look again until it settles
    if (found) return undefined;
    const actor = await actorFor('replica-create');
    const now = new Date().toISOString();
    const dir = join(store.path, 'replicas', key.id);
    const inserted = await insertReplica(
      deps.db,
      { id: key.id, image_name: key.image, image_version: key.imageVersion, phase1_digest: key.digest, host_id: key.hostId, datastore: key.datastore, state: 'creating', dir, disks_json: '[]', phase1_json: null, last_error: null, created_at: now, updated_at: now },
      actor,
    );
    if (!inserted) return undefined; // another task inserted it first: take theirs
    return { replica: await make(dir, actor), reused: false };
  };
  return waitUntil(attempt, { deadlineMs: REPLICA_WAIT_MS, everyMs: 1_000, what: `replica ${key.id} (made by another task)`, ...(report.signal ? { signal: report.signal } : {}) });
}

async function makeReplica(deps: VmDeps, spec: ReplicaSpec, id: string, dir: string, actor: Actor, report: StepReporter): Promise<ReplicaRow> {
  const clone = cloneName(id);
  try {
    faultPoint('replica.inserted');
    const p1 = await runPhase1(
      deps,
      {
        clone,
        image: spec.image,
        ...(spec.memory ? { memory: spec.memory } : {}),
        ...(spec.cpus ? { cpus: spec.cpus } : {}),
        layout: diskLayoutOf(spec),
        common: spec.customize.common,
        ...(spec.access ? { sshAuthorizedKeys: spec.access.sshAuthorizedKeys } : {}),
        signal: report.signal,
      },
      {
        // phase 1 enters a step before each of its parts (disks, each common script, power-off): a cancel stops it
        // there, or in the part's wait through the signal, and runPhase1 removes the internal clone as after any failure
        step: (name, percent) => {
          report.signal?.throwIfAborted();
          void report.step(`phase 1: ${name}`, Math.round(percent * 0.5));
        },
        event: (m) => void report.event('phase1', m),
      },
    );
    report.signal?.throwIfAborted();
    await report.step('replica: full copy onto the datastore', 50);
    const t0 = performance.now();
    await mkdir(dir, { recursive: true });
    const disks: ReplicaDisk[] = [];
    for (const d of p1.disks) {
      report.signal?.throwIfAborted();
      const target = diskFile(dir, d.id);
      // convert flattens the clone's backing chain: the replica depends on nothing but its own files
      await convert(d.path, target, { outFormat: 'qcow2' });
      disks.push({ id: d.id, ...(await sealFile(target, 'replica-disk')) });
      faultPoint('replica.disk-copied');
    }
    const phase1: Phase1Record = { reboots: p1.reboots, mounts: p1.mounts, ms: p1.ms, copyMs: Math.round(performance.now() - t0) };
    await destroyVm(deps, clone);
    await updateReplica(deps.db, id, { disks_json: JSON.stringify(disks), phase1_json: JSON.stringify(phase1) });
    await transition(deps.db, 'replicas', id, 'creating', 'ready', actor);
    faultPoint('replica.ready');
    await report.event('replica', `replica ${id} ready: phase 1 with ${p1.reboots} reboot(s) in ${(p1.ms.total / 1000).toFixed(1)} s, copy ${phase1.copyMs} ms`, { replica: id, reboots: p1.reboots });
    return (await getReplica(deps.db, id)) as ReplicaRow;
  } catch (err) {
    await healReplica(deps, (await getReplica(deps.db, id)) as ReplicaRow, actor).catch((e: unknown) => deps.log.error({ replica: id, err: e }, 'rollback of the replica failed; heal finishes it'));
    throw withContext(err, `replica ${id}`);
  }
}

/** The internal clone of a replica's phase 1. */
export function cloneName(replicaId: string): string {
  return `p1-${replicaId}`;
}

/** Rolls a half-made replica back (its internal clone, its copied files, its record), or finishes a removal. */
export async function healReplica(deps: VmDeps, row: ReplicaRow, actor: Actor): Promise<string> {
  if (row.state === 'creating') await transition(deps.db, 'replicas', row.id, 'creating', 'deleting', actor);
  const clone = cloneName(row.id);
  if (await getVm(deps.db, clone)) await destroyVm(deps, clone);
  await rm(row.dir, { recursive: true, force: true });
  await deleteReplicaRow(deps.db, row.id);
  return `${row.state === 'creating' ? 'creation rolled back' : 'removal finished'}: internal clone, copied disks and record removed`;
}

/** The sealed disks of a ready replica, system disk first. */
export function replicaDisks(row: ReplicaRow): ReplicaDisk[] {
  return JSON.parse(row.disks_json) as ReplicaDisk[];
}

/** Removes a replica nothing uses any more; refused (VMFORK_REPLICA_IN_USE) while a pool forks from it. */
export async function removeReplica(deps: VmDeps, id: string, options: { checkOnly?: boolean } = {}): Promise<void> {
  const row = await getReplica(deps.db, id);
  if (!row) throw new VmforkError('VMFORK_REPLICA_NOT_FOUND', `no replica "${id}" (see: vmfork replica list)`, { details: { replica: id } });
  const pools = await replicaPools(deps.db, id);
  if (pools.length) throw new VmforkError('VMFORK_REPLICA_IN_USE', `replica ${id} is used by pool(s) ${pools.join(', ')}; remove them first`, { details: { replica: id, pools } });
  if (options.checkOnly) return;
  await transition(deps.db, 'replicas', id, row.state, 'deleting', await actorFor('replica-rm'));
  await healReplica(deps, { ...row, state: 'deleting' }, await actorFor('replica-rm'));
}

