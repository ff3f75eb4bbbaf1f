import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { actorFor } from '../host/index.js';
import { allocateLeaseIn, ensureNetworkNamed, plugLease } from '../network/index.js';
import { loadForServing, sendPostcopy, type LaunchedProcess } from '../qemu/index.js';
import { insertVm, requireTemplate, transition, withWriteLock } from '../store/index.js';
import { assertTemplateHere, readyTemplate, templateDisks } from '../template/index.js';
import { hereHost, rollbackVm, startVmProcess, vmPaths, type VmDeps } from '../vm/index.js';
import { makeOverlays } from './child.js';
import { childSpec } from './child-spec.js';
import { assertMatchesTemplate } from './plan.js';

/** A template's state loaded in a QEMU of this host that never runs it: the source of a lazy child's memory. */
export interface MemoryServer {
  name: string;
  /** The template's disks by device id, as files of this host (what the lazy child's disks are read from). */
  disks: { id: string; path: string }[];
  /** Migrates the state into `peer` by postcopy (the destination runs at once) and waits for the last page. */
  send(peer: Duplex, options?: { timeoutMs?: number }): Promise<void>;
  /** Ends the QEMU and removes its record, overlays, tap and address. */
  stop(): Promise<void>;
}

/**
 * A memory server for a lazy child on another host (issue 14 item 8, docs/lazy-replicas.md): a warm process of the
 * template (its own overlays, tap and address on this host, the template's RAM file mapped copy-on-write) that
 * loads the template's frozen state and stays paused. It is `forking` for its life, owned by this process, so a
 * refill of the template's warm processes never counts it, and the next command after a crash rolls it back.
 */
export async function startMemoryServer(deps: VmDeps, template: string, network: string | undefined): Promise<MemoryServer> {
  const t = readyTemplate(await requireTemplate(deps.db, template));
  assertTemplateHere(hereHost(deps), t.row);
  await assertMatchesTemplate(t);
  const net = await ensureNetworkNamed(deps.db, network, hereHost(deps));
  const actor = await actorFor('fork');
  const name = `${t.row.name.slice(0, 49)}-serve-${randomBytes(3).toString('hex')}`;
  const w = await withWriteLock(deps.db, async (conn) => {
    const lease = await allocateLeaseIn(conn, { network: net, vmName: name, host: hereHost(deps) });
    const paths = vmPaths(deps.home.vms, name);
    const spec = childSpec(t, name, paths, lease);
    const now = new Date().toISOString();
    await insertVm(conn, { name, host_id: hereHost(deps), image_name: t.record.image, template_name: t.row.name, pool_name: null, state: 'creating', role: 'warm', dir: paths.dir, spec_json: JSON.stringify(spec), last_error: null, created_at: now, updated_at: now }, actor);
    return { name, lease, paths, spec };
  });
  let launched: LaunchedProcess | undefined;
  const stop = async (): Promise<void> => {
    await rollbackVm(deps, name, actor, new Error('memory server done'), launched);
  };
  try {
    await plugLease(w.lease);
    await makeOverlays(t, w);
    launched = await startVmProcess(deps, name, w.spec, w.paths, { netns: w.lease.netns });
    await transition(deps.db, 'vms', name, 'creating', 'forking', actor);
    await loadForServing(w.paths.qmp);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    name,
    disks: templateDisks(t.record).map((d) => ({ id: d.id, path: d.file.path })),
    send: (peer, options) => sendPostcopy(w.paths.qmp, peer, options),
    stop,
  };
}
