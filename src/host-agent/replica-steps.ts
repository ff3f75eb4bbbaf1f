import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { VmforkError } from '../errors.js';
import { runOnHost } from '../jobs/index.js';
import { parsePoolSpec } from '../pool/index.js';
import { pullNbd, removePskDir, startNbdExport, writePskDir, type NbdExport } from '../qemu/index.js';
import { ensureReplica, receiveReplica, removeReplicaAndTemplates, replicaDisks, type StepReporter } from '../replica/index.js';
import { getReplica, type ReplicaRow } from '../store/index.js';
import { exportKey } from './fleet-key.js';
import type { StepContext } from './step-context.js';

/** An export nobody pulled by then is ended: a puller that died must not leave a server behind. */
const EXPORT_LIFE_MS = 15 * 60_000;

export function reporter(ctx: StepContext, what: string): StepReporter {
  return {
    step: (name) => void ctx.deps.log.info({ host: ctx.deps.hostId, what }, name),
    event: (kind, message) => void ctx.deps.log.info({ host: ctx.deps.hostId, what, kind }, message),
  };
}

export function needFleetKey(ctx: StepContext): Buffer {
  if (!ctx.fleetKey) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `host ${ctx.deps.hostId}'s agent has no --fleet-key-file: replicas are copied between hosts only under the fleet's key (docs/jobs.md)`, {
      details: { host: ctx.deps.hostId, field: 'fleet-key-file' },
    });
  }
  return ctx.fleetKey;
}

/** Phase 1 and the replica, on this host, for a pool spec. */
export async function makeReplicaHere(ctx: StepContext, rawSpec: Record<string, unknown>): Promise<Record<string, unknown>> {
  const spec = parsePoolSpec(rawSpec);
  const { replica, reused } = await ensureReplica(ctx.deps, spec, reporter(ctx, 'replica-make'));
  return { replica: replica.id, host: replica.host_id, datastore: replica.datastore, reused };
}

/** This host's replica `id` if it is ready; VMFORK_REPLICA_STATE naming what it was wanted for otherwise. */
export async function readyReplicaHere(ctx: StepContext, id: string, purpose: string): Promise<ReplicaRow> {
  const row = await getReplica(ctx.deps.db, id);
  if (!row || row.host_id !== ctx.deps.hostId || row.state !== 'ready') {
    throw new VmforkError('VMFORK_REPLICA_STATE', `host ${ctx.deps.hostId} has no ready replica ${id} to ${purpose}`, { details: { replica: id, host: ctx.deps.hostId, state: row?.state ?? null } });
  }
  return row;
}

/**
 * Disks exported read-only over NBD on the agent's address, each under `key` (a fresh PSK dir): all of them or
 * none — on a failure the exports already started are stopped and the key removed.
 */
export async function exportDisks(ctx: StepContext, key: string, files: { id: string; path: string }[], format?: 'qcow2'): Promise<{ disks: NbdExport[]; pskDir: string }> {
  const pskDir = await writePskDir(key, nbdDir(ctx));
  const disks: NbdExport[] = [];
  try {
    for (const d of files) disks.push(await startNbdExport({ file: d.path, host: ctx.listenHost, name: d.id, pskDir, ...(format ? { format } : {}) }));
  } catch (err) {
    await endExports({ disks, pskDir });
    throw err;
  }
  return { disks, pskDir };
}

export async function endExports(e: { disks: NbdExport[]; pskDir: string }): Promise<void> {
  await Promise.all(e.disks.map((d) => d.stop()));
  await removePskDir(e.pskDir);
}

/** Serves a ready replica of this host, read-only, one NBD export per disk, under the export's derived key. */
export async function exportReplica(ctx: StepContext, id: string, exportId: string): Promise<Record<string, unknown>> {
  const key = needFleetKey(ctx);
  const row = await readyReplicaHere(ctx, id, 'serve');
  const known = ctx.exports.get(exportId);
  if (known) return { host: ctx.listenHost, disks: known.disks.map((d) => ({ id: d.name, port: d.port })) };
  const { disks, pskDir } = await exportDisks(ctx, exportKey(key, exportId), replicaDisks(row));
  const timer = setTimeout(() => void unexportReplica(ctx, exportId), EXPORT_LIFE_MS);
  timer.unref();
  ctx.exports.set(exportId, { disks, pskDir, timer });
  return { host: ctx.listenHost, disks: disks.map((d) => ({ id: d.name, port: d.port })) };
}

/** Where this agent keeps its exports' and pulls' keys: its own data dir, so a successor finds what it left. */
export function nbdDir(ctx: Pick<StepContext, 'deps'>): string {
  return join(ctx.deps.home.run, 'nbd');
}

export async function unexportReplica(ctx: StepContext, exportId: string): Promise<Record<string, unknown>> {
  const e = ctx.exports.get(exportId);
  ctx.exports.delete(exportId);
  if (e) {
    clearTimeout(e.timer);
    await endExports(e);
  }
  return { exportId, ended: Boolean(e) };
}

/** Removes a replica of this host with its templates and files (the replica room refuses one a pool uses). */
export async function removeReplicaHere(ctx: StepContext, id: string, attempt: number): Promise<Record<string, unknown>> {
  const row = await getReplica(ctx.deps.db, id);
  if (!row && attempt > 0) return { id, templates: [] };
  if (row && row.host_id !== ctx.deps.hostId) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `replica ${id} is on host ${row.host_id}, not ${ctx.deps.hostId}`, { details: { replica: id, host: row.host_id } });
  }
  return removeReplicaAndTemplates(ctx.deps, id);
}

/**
 * This host's copy of another host's replica: at most --max-copies at once here. The source's agent serves it
 * (a replica-export job), this one pulls each disk with qemu-img over NBD under TLS-PSK, the replica room checks
 * each against its sealed sha256, and the export is ended whatever happened.
 */
export async function receiveReplicaHere(ctx: StepContext, id: string, datastore: string): Promise<Record<string, unknown>> {
  const key = needFleetKey(ctx);
  const source = await getReplica(ctx.deps.db, id);
  if (!source) throw new VmforkError('VMFORK_REPLICA_NOT_FOUND', `no replica "${id}" (see: vmfork replica list)`, { details: { replica: id } });
  if (source.host_id === ctx.deps.hostId) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `replica ${id} is already on host ${ctx.deps.hostId}`, { details: { replica: id, host: ctx.deps.hostId } });
  }
  const release = await ctx.copies.take();
  const t0 = performance.now();
  try {
    const { replica, reused } = await receiveReplica(ctx.deps, source, datastore, async (wanted) => {
      const exportId = randomUUID();
      const served = (await runOnHost(ctx.queue, ctx.deps.db, source.host_id, { op: 'replica-export', replica: id, exportId })) as { host: string; disks: { id: string; port: number }[] };
      const pskDir = await writePskDir(exportKey(key, exportId), nbdDir(ctx));
      try {
        for (const w of wanted) {
          const port = served.disks.find((d) => d.id === w.disk.id)?.port;
          if (!port) throw new VmforkError('VMFORK_HOST_JOB', `host ${source.host_id} did not serve disk ${w.disk.id} of replica ${id}`, { details: { replica: id, disk: w.disk.id } });
          await pullNbd({ host: served.host, port, name: w.disk.id, pskDir, target: w.target });
        }
      } finally {
        await removePskDir(pskDir);
        await runOnHost(ctx.queue, ctx.deps.db, source.host_id, { op: 'replica-unexport', exportId }).catch((err: unknown) => ctx.deps.log.warn({ err, exportId }, 'could not end the export: its deadline ends it'));
      }
    }, reporter(ctx, 'replica-receive'));
    return { replica: replica.id, host: replica.host_id, datastore: replica.datastore, from: id, fromHost: source.host_id, reused, seconds: Math.round(performance.now() - t0) / 1000 };
  } finally {
    release();
  }
}
