import { listReplicaRows, replicaPools, replicaTemplates, type Db, type ReplicaRow } from '../store/index.js';
import { removeTemplate } from '../template/index.js';
import type { VmDeps } from '../vm/index.js';
import type { CopyRecord } from './copy.js';
import { removeReplica, replicaDisks, type Phase1Record } from './map.js';
import type { ReplicaView } from './views.js';

function phase1Of(r: ReplicaRow): ReplicaView['phase1'] {
  if (!r.phase1_json) return null;
  const p = JSON.parse(r.phase1_json) as Phase1Record;
  return { reboots: p.reboots, seconds: (p.ms.total ?? 0) / 1000, copySeconds: p.copyMs / 1000 };
}

/** The replica map: every replica with its template and the pools that use it. */
export async function listReplicaViews(db: Db): Promise<ReplicaView[]> {
  return Promise.all(
    (await listReplicaRows(db)).map(async (r) => ({
      id: r.id,
      state: r.state,
      image: r.image_name,
      imageVersion: r.image_version,
      phase1Digest: r.phase1_digest,
      hostId: r.host_id,
      datastore: r.datastore,
      path: r.dir,
      template: (await replicaTemplates(db, r.id))[0]?.name ?? null,
      pools: await replicaPools(db, r.id),
      phase1: phase1Of(r),
      disks: replicaDisks(r).map((d) => ({ id: d.id, path: d.path, sha256: d.sha256, size: d.size })),
      copiedFrom: r.phase1_json ? ((JSON.parse(r.phase1_json) as Partial<CopyRecord>).copiedFrom ?? null) : null,
      createdAt: r.created_at,
    })),
  );
}

/**
 * Removes a replica no pool uses, its templates first (they are overlays on its disks; a template a child still
 * forks from refuses). VMFORK_REPLICA_NOT_FOUND / VMFORK_REPLICA_IN_USE come from removeReplica's own checks, made
 * before anything is removed.
 */
export async function removeReplicaAndTemplates(deps: VmDeps, id: string): Promise<{ id: string; templates: string[] }> {
  await removeReplica(deps, id, { checkOnly: true });
  const templates = (await replicaTemplates(deps.db, id)).map((t) => t.name);
  for (const t of templates) await removeTemplate(deps, t);
  await removeReplica(deps, id);
  return { id, templates };
}
