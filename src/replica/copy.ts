import { mkdir } from 'node:fs/promises';
import { VmforkError, withContext } from '../errors.js';
import { getReplica, transition, updateReplica, type ReplicaRow } from '../store/index.js';
import { sealFile } from '../template/index.js';
import { diskFile, hereHost, type VmDeps } from '../vm/index.js';
import { findOrMake, healReplica, replicaDisks, replicaId, type Phase1Record, type ReplicaDisk, type StepReporter } from './map.js';

/** Fetches a source replica's disks into the given files (over the network: src/host-agent/ pulls them over NBD). */
export type ReplicaPull = (disks: readonly { disk: ReplicaDisk; target: string }[]) => Promise<void>;

/** What a copy records next to phase 1's facts: where it came from and how long the copy took. */
export interface CopyRecord extends Phase1Record {
  copiedFrom: { replica: string; host: string };
}

/**
 * This host's replica for the same image version and phase-1 digest as `source` (another host's): Horizon's
 * replica on each host's datastore, without phase 1 again. Reused when this host has it; otherwise its record is
 * made here (`creating`), every disk pulled whole, each checked against the sha256 the source sealed it with,
 * sealed, and the replica is `ready`. A mismatch or a failed pull rolls the copy back (files and record).
 */
export async function receiveReplica(deps: VmDeps, source: ReplicaRow, datastore: string, pull: ReplicaPull, report: StepReporter): Promise<{ replica: ReplicaRow; reused: boolean }> {
  if (source.state !== 'ready') {
    throw new VmforkError('VMFORK_REPLICA_STATE', `replica ${source.id} is ${source.state}: only a ready replica is copied`, { details: { replica: source.id, state: source.state } });
  }
  const hostId = hereHost(deps);
  const key = { id: replicaId(source.image_version, source.phase1_digest, hostId, datastore), image: source.image_name, imageVersion: source.image_version, digest: source.phase1_digest, hostId, datastore };
  return findOrMake(deps, key, report, 'already on this host, no copy', async (dir, actor) => {
    try {
      const t0 = performance.now();
      await mkdir(dir, { recursive: true });
      const wanted = replicaDisks(source).map((disk) => ({ disk, target: diskFile(dir, disk.id) }));
      await report.step(`replica: copy from host ${source.host_id}`, 10);
      await pull(wanted);
      const disks: ReplicaDisk[] = [];
      for (const { disk, target } of wanted) {
        const sealed = await sealFile(target, 'replica-disk');
        if (sealed.sha256 !== disk.sha256) {
          throw new VmforkError('VMFORK_REPLICA_CORRUPT', `disk ${disk.id} of replica ${source.id} arrived with sha256 ${sealed.sha256}, sealed at the source as ${disk.sha256}`, {
            details: { replica: source.id, disk: disk.id, got: sealed.sha256, want: disk.sha256 },
          });
        }
        disks.push({ id: disk.id, ...sealed });
      }
      const copyMs = Math.round(performance.now() - t0);
      const phase1 = JSON.parse(source.phase1_json ?? '{}') as Phase1Record;
      const record: CopyRecord = { ...phase1, copyMs, copiedFrom: { replica: source.id, host: source.host_id } };
      await updateReplica(deps.db, key.id, { disks_json: JSON.stringify(disks), phase1_json: JSON.stringify(record) });
      await transition(deps.db, 'replicas', key.id, 'creating', 'ready', actor);
      await report.event('replica', `replica ${key.id} copied from ${source.id} on host ${source.host_id} in ${copyMs} ms, sha256 checked`, { replica: key.id, from: source.id, copyMs });
      return (await getReplica(deps.db, key.id)) as ReplicaRow;
    } catch (err) {
      await healReplica(deps, (await getReplica(deps.db, key.id)) as ReplicaRow, actor).catch((e: unknown) => deps.log.error({ replica: key.id, err: e }, 'rollback of the copy failed; heal finishes it'));
      throw withContext(err, `copy of replica ${source.id} to host ${hostId}`);
    }
  });
}
