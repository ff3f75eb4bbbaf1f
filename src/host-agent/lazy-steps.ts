import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { VmforkError } from '../errors.js';
import { forkLazy, settleLazy, startMemoryServer, type ChildCustomizer, type ForkedChild, type SettledLazy } from '../fork/index.js';
import { postcopyReady } from '../host/index.js';
import { runOnHost } from '../jobs/index.js';
import { parsePoolSpec } from '../pool/index.js';
import { relayBacking, removePskDir, startNbdRelay, writePskDir, type NbdExport, type NbdRelay } from '../qemu/index.js';
import { ensureReplicaTemplate } from '../replica/index.js';
import { requirePool } from '../store/index.js';
import { vmPaths } from '../vm/index.js';
import { exportKey } from './fleet-key.js';
import { dialPsk, listenPsk, type PskListener } from './psk-link.js';
import { endExports, exportDisks, needFleetKey, nbdDir, readyReplicaHere, reporter } from './replica-steps.js';
import type { StepContext } from './step-context.js';

/** A memory server nobody connected to by then is ended, as an export is. */
const SERVE_LIFE_MS = 15 * 60_000;

/** The key of a serve's memory link: derived like an export's, under another label. */
const memoryKey = (fleetKey: Buffer, serveId: string): Buffer => Buffer.from(exportKey(fleetKey, `${serveId}/memory`), 'hex');

/**
 * Source side of a lazy child (issue 14 item 8): the pool's template here (made or waited for), a memory server
 * that loaded its state, each of its disks exported read-only over NBD as the guest sees it (qcow2 chain), and a
 * TLS-PSK listener that joins one peer to the memory server by postcopy. Everything ends when that migration ends,
 * at `template-unserve`, or at the deadline.
 */
export async function serveTemplate(ctx: StepContext, pool: string, replicaId: string, serveId: string): Promise<Record<string, unknown>> {
  const key = needFleetKey(ctx);
  const known = ctx.serves.get(serveId);
  if (known) return known.answer;
  const spec = parsePoolSpec(JSON.parse((await requirePool(ctx.deps.db, pool)).spec_json));
  const replica = await readyReplicaHere(ctx, replicaId, 'serve a lazy child from');
  const template = await ensureReplicaTemplate(ctx.deps, replica, spec, reporter(ctx, 'template-serve'));
  const server = await startMemoryServer(ctx.deps, template.row.name, spec.network);
  let exported: { disks: NbdExport[]; pskDir: string } | undefined;
  let listener: PskListener | undefined;
  try {
    // the disks as the guest sees them (the template's qcow2 chain), not the replica's files
    exported = await exportDisks(ctx, exportKey(key, serveId), server.disks, 'qcow2');
    let taken = false;
    listener = await listenPsk(ctx.listenHost, memoryKey(key, serveId), (link) => {
      if (taken) return void link.destroy();
      taken = true;
      const t0 = performance.now();
      server
        .send(link)
        .then(() => ctx.deps.log.info({ serveId, template: template.row.name, ms: Math.round(performance.now() - t0) }, 'lazy child: memory sent'))
        .catch((err: unknown) => ctx.deps.log.warn({ err, serveId }, 'lazy child: the memory stream failed'))
        // the memory server has served its one child; the disks stay exported until template-unserve
        .finally(() => void server.stop());
    });
  } catch (err) {
    listener?.close();
    if (exported) await endExports(exported);
    await server.stop();
    throw err;
  }
  const { disks, pskDir } = exported;
  const answer = { host: ctx.listenHost, memoryPort: listener.port, template: template.row.name, disks: disks.map((d) => ({ id: d.name, port: d.port })) };
  const timer = setTimeout(() => void unserveTemplate(ctx, serveId), SERVE_LIFE_MS);
  timer.unref();
  ctx.serves.set(serveId, { server, disks, listener, pskDir, timer, answer });
  return answer;
}

export async function unserveTemplate(ctx: StepContext, serveId: string): Promise<Record<string, unknown>> {
  const s = ctx.serves.get(serveId);
  ctx.serves.delete(serveId);
  if (s) {
    clearTimeout(s.timer);
    s.listener.close();
    await endExports(s);
    await s.server.stop();
  }
  return { serveId, ended: Boolean(s) };
}

export interface LazyChild {
  child: ForkedChild;
  fromHost: string;
  /** Settles when the child holds all its memory and disks itself (relays and the source's serve then ended). */
  settled: Promise<SettledLazy>;
}

/**
 * Destination side: one child of `pool` forked here from `sourceHost`'s template before this host has the replica.
 * The source serves; this agent relays each disk's export to a unix socket in the child's directory (its QEMU runs
 * in a network namespace with no route out, and holds no key) and joins the child's incoming migration to the
 * source's memory server over TLS-PSK. Returns once the child is ready; `settled` follows.
 */
export async function lazyChildHere(ctx: StepContext, o: { pool: string; name: string; sourceHost: string; replica: string; customize?: ChildCustomizer; signal: AbortSignal }): Promise<LazyChild> {
  const key = needFleetKey(ctx);
  const ready = await postcopyReady();
  if (!ready.on) throw new VmforkError('VMFORK_NOT_SUPPORTED', `host ${ctx.deps.hostId} cannot take a lazy child: ${ready.why}`, { details: { host: ctx.deps.hostId } });
  const spec = parsePoolSpec(JSON.parse((await requirePool(ctx.deps.db, o.pool)).spec_json));
  const serveId = randomUUID();
  const unserve = (): Promise<unknown> =>
    runOnHost(ctx.queue, ctx.deps.db, o.sourceHost, { op: 'template-unserve', serveId }).catch((err: unknown) => ctx.deps.log.warn({ err, serveId }, 'could not end the serve: its deadline ends it'));
  const served = (await runOnHost(ctx.queue, ctx.deps.db, o.sourceHost, { op: 'template-serve', pool: o.pool, replica: o.replica, serveId }, { signal: o.signal })) as {
    host: string;
    memoryPort: number;
    template: string;
    disks: { id: string; port: number }[];
  };
  const pskDir = await writePskDir(exportKey(key, serveId), nbdDir(ctx));
  const relays: NbdRelay[] = [];
  const end = async (): Promise<void> => {
    await Promise.all(relays.map((r) => r.stop()));
    await removePskDir(pskDir);
    await unserve();
  };
  try {
    // in the child's own directory: its QEMU's uid is given the directory and all in it before QEMU starts
    const dir = vmPaths(ctx.deps.home.vms, o.name).dir;
    await mkdir(dir, { recursive: true });
    for (const d of served.disks) relays.push(await startNbdRelay({ host: served.host, port: d.port, name: d.id, pskDir, socket: join(dir, `nbd-${d.id}.sock`) }));
    const child = await forkLazy(ctx.deps, {
      template: served.template,
      name: o.name,
      network: spec.network,
      pool: o.pool,
      signal: o.signal,
      ...(o.customize ? { customize: o.customize } : {}),
      source: {
        backing: Object.fromEntries(relays.map((r) => [r.name, relayBacking(r)])),
        connect: () => dialPsk(served.host, served.memoryPort, memoryKey(key, serveId)),
      },
    });
    const settled = settleLazy(ctx.deps, o.name).finally(() => end());
    settled.catch(() => undefined);
    return { child, fromHost: o.sourceHost, settled };
  } catch (err) {
    await end();
    throw err;
  }
}
