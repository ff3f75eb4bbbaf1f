import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { cgroupsEmpty, isSameProcess, listVmCgroups, ownerAlive, readProcStat } from '../host/index.js';
import { BRIDGE_NAME, inspectNamespace, listNamespaces, NETNS_PREFIX_SETTING } from '../network/index.js';
import { networkStateMachine, replicaStateMachine, taskStateMachine, templateStateMachine, vmStateMachine, type VmRole, type VmState } from '../state/index.js';
import {
  currentProcess,
  getSetting,
  listCheckpoints,
  listDatastores,
  listLeases,
  listNetworkRows,
  listReplicaRows,
  listTasks,
  listTemplates,
  listVms,
  replicaPools,
  templateChildren,
  transitionalRows,
  type Db,
  type StatefulTable,
} from '../store/index.js';
import type { VmDeps } from '../vm/index.js';

/**
 * What a gc pass looks at, read-only. The reading ORDER is what makes a later "no record" verdict safe: every
 * vmfork operation writes its record before it makes the thing (a VM row before its directory and QEMU, a lease
 * before its tap, a replica row before its directory), so the things are listed first and the records after them.
 * Whatever was seen without a record had none even once everything seen was made.
 */
export interface GcScan {
  root: string;
  /** QEMU processes whose command line names a path inside the data dir (only those arguments are kept). */
  qemus: ScannedQemu[];
  /** Directories under vms/, templates/, and each datastore's replicas/ and promoted/ (absolute paths). */
  dirs: { vm: string[]; template: string[]; replica: string[]; promoted: string[] };
  /** This data dir's VM cgroups (docs/cgroups.md) by VM name, each with its directory in every hierarchy. */
  cgroups: { vm: string; paths: string[]; empty: boolean }[];
  /** Taps found in each network's namespace (listed before the leases). */
  taps: { network: string; netns: string; bridge: string; tap: string }[];
  /** Namespaces named with this data dir's own prefix, with what they hold. */
  namespaces: ScannedNamespace[];
  leases: { network: string; vm: string; tap: string; ip: string }[];
  vms: ScannedVm[];
  templates: ({ name: string; dir: string; replicaId: string | null; busy: boolean; children: string[] } & RuntimeFiles)[];
  replicas: { id: string; dir: string; busy: boolean; pools: string[] }[];
  networks: { name: string; netns: string; busy: boolean }[];
  /** Records in a transitional state whose owner (pid + start time) is gone: src/heal/'s work. */
  healable: { table: HealTable; name: string; state: string; ownerPid: number | null }[];
  /** Tasks not finished (queued, running, cancelling): a pool operation may be about to use a replica. */
  liveTasks: number;
}

export type HealTable = Exclude<StatefulTable, 'tasks' | 'pools'>;

export interface ScannedQemu {
  pid: number;
  startTime: number;
  args: string[];
}

export interface ScannedNamespace {
  name: string;
  /** The bridge's alias (`vmfork:<owner id>`), if a bridge is there. */
  alias: string | undefined;
  /** Links vmfork never creates, or routes out: such a namespace is never ours to delete. */
  foreign: string[];
}

/** Socket and pidfile names a VM directory holds while its QEMU runs. */
export const RUNTIME_FILES = ['qmp.sock', 'qga.sock', 'vfg.sock', 'tty.sock', 'con.sock', 'vnc.sock', 'qemu.pid'] as const;

export interface ScannedVm extends RuntimeFiles {
  name: string;
  role: VmRole;
  state: VmState;
  dir: string;
  pool: string | null;
  lastError: string | null;
  /** In a transitional state whose owner still runs: that process's business. */
  busy: boolean;
  /** The recorded QEMU (pid + start time) still runs. */
  qemuAlive: boolean;
  /** The QEMU its record names (pid + start time), if any. */
  qemu: { pid: number; startTime: number } | null;
  /** Checkpoints it has: a VM with one can be brought back by a revert, whatever its QEMU did. */
  checkpoints: number;
}

/** Runtime files present in a directory; `pidfilePid` is what its qemu.pid says. */
export interface RuntimeFiles {
  runtimeFiles: string[];
  pidfilePid: number | null;
}

/** QEMU processes naming a path inside `root`: a QMP socket under the data dir ties a QEMU to it and to nothing else. */
export async function qemuProcessesUnder(root: string): Promise<ScannedQemu[]> {
  const out: ScannedQemu[] = [];
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const args = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(Boolean);
    if (!basename(args[0] ?? '').startsWith('qemu-system')) continue;
    const ours = args.filter((a) => a.includes(`${root}/`));
    if (ours.length === 0) continue;
    const stat = await readProcStat(Number(entry)).catch(() => undefined);
    if (stat && stat.state !== 'Z' && stat.state !== 'X') out.push({ pid: Number(entry), startTime: stat.startTime, args: ours });
  }
  return out;
}

async function subdirs(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isDirectory()).map((e) => join(dir, e.name));
}

async function runtimeFilesOf(dir: string): Promise<RuntimeFiles> {
  const present = new Set(await readdir(dir).catch(() => [] as string[]));
  const runtimeFiles = RUNTIME_FILES.filter((f) => present.has(f));
  const text = present.has('qemu.pid') ? await readFile(join(dir, 'qemu.pid'), 'utf8').catch(() => '') : '';
  const pid = Number(text.trim());
  return { runtimeFiles, pidfilePid: text && Number.isSafeInteger(pid) && pid > 0 ? pid : null };
}

/** This data dir's own namespace prefix as its store drew it (never VMFORK_NETNS_PREFIX: another data dir may share that). */
export async function ownNetnsPrefix(db: Db): Promise<string | undefined> {
  return getSetting(db, NETNS_PREFIX_SETTING);
}

async function scanNetworks(db: Db): Promise<{ taps: GcScan['taps']; namespaces: ScannedNamespace[] }> {
  const taps: GcScan['taps'] = [];
  for (const n of await listNetworkRows(db)) {
    const r = await inspectNamespace(n.netns, n.bridge);
    for (const t of r.taps) taps.push({ network: n.name, netns: n.netns, bridge: n.bridge, tap: t.name });
  }
  const prefix = await ownNetnsPrefix(db);
  const namespaces: ScannedNamespace[] = [];
  for (const name of prefix ? await listNamespaces() : []) {
    if (!name.startsWith(prefix as string)) continue;
    const r = await inspectNamespace(name, BRIDGE_NAME);
    namespaces.push({ name, alias: r.bridge.alias, foreign: [...r.foreignLinks, ...r.routesOut] });
  }
  return { taps, namespaces };
}

/** Every VM record with what its QEMU and directory say now. */
export async function scanVms(db: Db): Promise<ScannedVm[]> {
  return Promise.all(
    (await listVms(db)).map(async (v) => {
      const proc = await currentProcess(db, v.name);
      return {
        name: v.name,
        role: v.role,
        state: v.state,
        dir: v.dir,
        pool: v.pool_name,
        lastError: v.last_error,
        busy: vmStateMachine.isTransitional(v.state) && (await ownerAlive({ pid: v.owner_pid, startTime: v.owner_start_time, boot: v.owner_boot })),
        qemuAlive: proc ? await isSameProcess(proc.pid, proc.start_time) : false,
        qemu: proc ? { pid: proc.pid, startTime: proc.start_time } : null,
        checkpoints: (await listCheckpoints(db, v.name)).length,
        ...(await runtimeFilesOf(v.dir)),
      };
    }),
  );
}

const HEAL_TABLES: readonly HealTable[] = ['replicas', 'templates', 'vms', 'networks', 'images'];

async function scanHealable(db: Db): Promise<GcScan['healable']> {
  const out: GcScan['healable'] = [];
  for (const table of HEAL_TABLES) {
    for (const row of await transitionalRows(db, table)) {
      if (!(await ownerAlive({ pid: row.owner_pid, startTime: row.owner_start_time, boot: row.owner_boot }))) out.push({ table, name: row.name, state: row.state, ownerPid: row.owner_pid });
    }
  }
  return out;
}

async function busyOwner(row: { owner_pid: number | null; owner_start_time: number | null; owner_boot: string | null }, transitional: boolean): Promise<boolean> {
  return transitional && (await ownerAlive({ pid: row.owner_pid, startTime: row.owner_start_time, boot: row.owner_boot }));
}

/** How many tasks are unfinished (at most one per state is counted: only zero matters). */
export async function liveTaskCount(db: Db): Promise<number> {
  const live = taskStateMachine.states.filter((st) => taskStateMachine.isTransitional(st));
  return (await Promise.all(live.map((state) => listTasks(db, { state, limit: 1 })))).flat().length;
}

/** Reads everything a gc pass decides on, in the order that makes "no record" safe (see GcScan). */
export async function scanDataDir(deps: VmDeps): Promise<GcScan> {
  const { db, home } = deps;
  const qemus = await qemuProcessesUnder(home.root);
  const cgroups = await Promise.all([...(await listVmCgroups(home.root))].map(async ([vm, paths]) => ({ vm, paths, empty: await cgroupsEmpty(paths) })));
  const { taps, namespaces } = await scanNetworks(db);
  const datastores = await listDatastores(db);
  const dirs = {
    vm: await subdirs(home.vms),
    template: await subdirs(home.templates),
    replica: (await Promise.all(datastores.map((d) => subdirs(join(d.path, 'replicas'))))).flat(),
    // a promotion onto a datastore puts a VM's disks in promoted/<vm> (src/vm/promote-files.ts), its record first
    promoted: (await Promise.all(datastores.map((d) => subdirs(join(d.path, 'promoted'))))).flat(),
  };
  const leases = (await listLeases(db)).map((l) => ({ network: l.network_name, vm: l.vm_name, tap: l.tap, ip: l.ip }));
  const vms = await scanVms(db);
  const templates = await Promise.all(
    (await listTemplates(db)).map(async (t) => ({
      name: t.name,
      dir: t.dir,
      replicaId: t.replica_id,
      busy: await busyOwner(t, templateStateMachine.isTransitional(t.state)),
      children: await templateChildren(db, t.name),
      ...(await runtimeFilesOf(t.dir)),
    })),
  );
  const replicas = await Promise.all(
    (await listReplicaRows(db)).map(async (r) => ({ id: r.id, dir: r.dir, busy: await busyOwner(r, replicaStateMachine.isTransitional(r.state)), pools: await replicaPools(db, r.id) })),
  );
  const networks = await Promise.all((await listNetworkRows(db)).map(async (n) => ({ name: n.name, netns: n.netns, busy: await busyOwner(n, networkStateMachine.isTransitional(n.state)) })));
  const liveTasks = await liveTaskCount(db);
  return { root: home.root, qemus, cgroups, dirs, taps, namespaces, leases, vms, templates, replicas, networks, healable: await scanHealable(db), liveTasks };
}
