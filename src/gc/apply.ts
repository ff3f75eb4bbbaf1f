import { rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { toVmforkError } from '../errors.js';
import { healInterrupted, type Healed } from '../heal/index.js';
import { ownerAlive, processesWithArg, removeVmCgroup } from '../host/index.js';
import { BRIDGE_NAME, deleteNamespace, deleteTap, detachVm } from '../network/index.js';
import { escapeOptionValue, terminateProcess } from '../qemu/index.js';
import { removeReplicaAndTemplates } from '../replica/index.js';
import { templateStateMachine } from '../state/index.js';
import { getReplica, getTemplate, getVm, listLeases, listNetworkRows, listReplicaRows, listTemplates, listVms, requireVm } from '../store/index.js';
import { removeTemplate } from '../template/index.js';
import { destroyVm, reconcileVm, type VmDeps } from '../vm/index.js';
import { deadVmVerdict, orphanQemuReason, type DirKind, type GcAction } from './plan.js';
import { liveTaskCount, scanVms, type GcScan, type HealTable } from './scan.js';

/**
 * What applying one action came to: `done` false with `skipped` when the re-check just before acting found it no
 * longer left over (something took it back since the scan), or with `error` when acting failed.
 */
export interface GcOutcome {
  done: boolean;
  skipped?: string;
  error?: string;
}

const HEALED_AS: Record<HealTable, Healed['resource']> = { replicas: 'replica', templates: 'template', vms: 'VM', networks: 'network', images: 'image' };

const NO_LONGER = (why: string): GcOutcome => ({ done: false, skipped: why });

async function qemuUsesDir(dir: string): Promise<boolean> {
  return (await processesWithArg(`unix:${escapeOptionValue(join(dir, 'qmp.sock'))},server=on,wait=off`)).length > 0;
}

async function dirRecorded(deps: VmDeps, of: DirKind, path: string): Promise<boolean> {
  if (of === 'promoted') return (await getVm(deps.db, basename(path))) !== undefined;
  // a template's parent VM lives in its template's directory
  const rows = of === 'replica' ? await listReplicaRows(deps.db) : [...(await listVms(deps.db)), ...(of === 'template' ? await listTemplates(deps.db) : [])];
  return rows.some((r) => r.dir === path);
}

async function templateBusy(deps: VmDeps, name: string): Promise<boolean> {
  const t = await getTemplate(deps.db, name);
  return t !== undefined && templateStateMachine.isTransitional(t.state) && (await ownerAlive({ pid: t.owner_pid, startTime: t.owner_start_time, boot: t.owner_boot }));
}

/**
 * Applies one action after checking, against the store and /proc as they are now, that it still holds: the scan
 * may be seconds old, and a vmfork process may have made a record for the thing since (a new fork reusing the name
 * of a crashed child's directory). The services do the work (destroy, heal, tap and namespace deletion, replica and
 * template removal), with their own checks on top.
 */
async function applyOne(deps: VmDeps, a: GcAction, scan: GcScan, healed: () => Promise<Healed[]>): Promise<GcOutcome> {
  const { db } = deps;
  switch (a.kind) {
    case 'heal-record': {
      const h = (await healed()).find((x) => x.name === a.name && x.resource === HEALED_AS[a.table]);
      if (!h) return NO_LONGER('another process healed it first');
      return h.ok ? { done: true } : { done: false, error: h.detail };
    }
    case 'kill-qemu': {
      const args = [`unix:${escapeOptionValue(join(a.dir, 'qmp.sock'))},server=on,wait=off`];
      if (!orphanQemuReason({ pid: a.pid, startTime: a.startTime, args }, { ...scan, vms: await scanVms(db) }, new Set())) {
        return NO_LONGER('a VM record now owns it');
      }
      const r = await terminateProcess(a.pid, a.startTime, { graceMs: 2_000 });
      return r === 'not-running' ? NO_LONGER('it had exited') : { done: true };
    }
    case 'destroy-vm': {
      const vm = (await scanVms(db)).find((v) => v.name === a.name);
      if (!vm || deadVmVerdict(vm, scan, new Set())?.kind !== 'destroy-vm') return NO_LONGER('the record changed since the scan');
      await destroyVm(deps, a.name);
      return { done: true };
    }
    case 'reconcile-vm': {
      const before = await requireVm(db, a.name);
      const vm = await reconcileVm(deps, before);
      return vm.state === before.state ? NO_LONGER(`still ${vm.state}: its QEMU runs`) : { done: true };
    }
    case 'release-lease': {
      if ((await getVm(db, a.vm)) || (await templateBusy(deps, a.vm))) return NO_LONGER(`${a.vm} has a record now`);
      await detachVm(db, a.network, a.vm);
      return { done: true };
    }
    case 'delete-tap': {
      if ((await listLeases(db, a.network)).some((l) => l.tap === a.tap)) return NO_LONGER('a lease names it now');
      return (await deleteTap({ netns: a.netns, bridge: a.bridge }, a.tap)) ? { done: true } : NO_LONGER('it was gone');
    }
    case 'delete-netns': {
      if ((await listNetworkRows(db)).some((n) => n.netns === a.netns)) return NO_LONGER('a network record has it now');
      const r = await deleteNamespace(a.netns, a.ownerId ?? '', BRIDGE_NAME, { emptyIsOurs: true });
      if (r === 'foreign') return { done: false, error: 'it holds a bridge this data dir did not label' };
      return r === 'deleted' ? { done: true } : NO_LONGER('it was gone');
    }
    case 'remove-cgroup': {
      if (await getVm(db, a.vm)) return NO_LONGER(`${a.vm} has a record now`);
      const left = await removeVmCgroup(deps.home.root, a.vm, {}, 0);
      return left.length ? { done: false, error: `still holds a process: ${left.join(', ')}` } : { done: true };
    }
    case 'remove-file': {
      const vm = (await scanVms(db)).find((v) => v.dir === a.dir);
      if ((vm && (vm.busy || vm.qemuAlive)) || (await qemuUsesDir(a.dir))) return NO_LONGER('a QEMU uses its directory now');
      await rm(a.path, { force: true });
      return { done: true };
    }
    case 'remove-dir': {
      if ((await dirRecorded(deps, a.of, a.path)) || (await qemuUsesDir(a.path))) return NO_LONGER('a record or a QEMU has it now');
      await rm(a.path, { recursive: true, force: true });
      return { done: true };
    }
    case 'remove-template': {
      const t = await getTemplate(db, a.name);
      if (!t || t.replica_id === null || (await getReplica(db, t.replica_id))) return NO_LONGER('its replica exists, or it is gone');
      await removeTemplate(deps, a.name);
      return { done: true };
    }
    case 'remove-replica': {
      if ((await liveTaskCount(db)) > 0) return NO_LONGER('a task is running');
      await removeReplicaAndTemplates(deps, a.id);
      return { done: true };
    }
  }
}

/** Applies the actions in order; one that fails is reported and the pass goes on with the rest. */
export async function applyActions(deps: VmDeps, actions: readonly GcAction[], scan: GcScan): Promise<GcOutcome[]> {
  let heal: Promise<Healed[]> | undefined;
  const healed = (): Promise<Healed[]> => (heal ??= healInterrupted(deps));
  const out: GcOutcome[] = [];
  for (const a of actions) {
    try {
      out.push(await applyOne(deps, a, scan, healed));
    } catch (err) {
      const e = toVmforkError(err);
      deps.log.warn({ action: a.kind, target: a.target, err }, 'gc action failed; the next pass tries again');
      out.push({ done: false, error: `${e.code}: ${e.message}` });
    }
  }
  return out;
}
