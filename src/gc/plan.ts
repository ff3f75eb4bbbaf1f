import { basename, dirname, join } from 'node:path';
import type { GcScan, HealTable, RuntimeFiles, ScannedQemu, ScannedVm } from './scan.js';

/** What one gc action does, in the order a pass applies them (processes before the files and links they hold). */
export const GC_ACTION_KINDS = [
  'heal-record',
  'kill-qemu',
  'destroy-vm',
  'reconcile-vm',
  'release-lease',
  'delete-tap',
  'delete-netns',
  'remove-cgroup',
  'remove-file',
  'remove-dir',
  'remove-template',
  'remove-replica',
] as const;
export type GcActionKind = (typeof GC_ACTION_KINDS)[number];

interface Described {
  /** What is acted on, as a user finds it (`VM web-3`, `QEMU 1234`, a path, `netns/tap`). */
  target: string;
  /** Why it is ours and left over: the proof gc acted on. */
  reason: string;
}

export type GcAction = Described &
  (
    | { kind: 'heal-record'; table: HealTable; name: string }
    | { kind: 'kill-qemu'; pid: number; startTime: number; dir: string }
    | { kind: 'destroy-vm' | 'reconcile-vm'; name: string }
    | { kind: 'release-lease'; network: string; vm: string }
    | { kind: 'delete-tap'; network: string; netns: string; bridge: string; tap: string }
    | { kind: 'delete-netns'; netns: string; ownerId: string | null }
    | { kind: 'remove-cgroup'; vm: string }
    | { kind: 'remove-file'; path: string; dir: string }
    | { kind: 'remove-dir'; path: string; of: DirKind }
    | { kind: 'remove-template'; name: string }
    | { kind: 'remove-replica'; id: string }
  );

export type DirKind = 'vm' | 'template' | 'replica' | 'promoted';

const QMP_ARG = /^unix:(.*)\/qmp\.sock,server=/;

/** The directory of a QEMU's QMP socket (its VM's directory), or undefined when it has none in the data dir. */
export function qmpDirOf(q: Pick<ScannedQemu, 'args'>): string | undefined {
  for (const a of q.args) {
    const m = QMP_ARG.exec(a);
    if (m?.[1]) return m[1].replace(/,,/g, ',');
  }
  return undefined;
}

/** States a VM record rests in while its QEMU should run (the transitional ones are their owner's business). */
const RUNNING_STATES = ['warm', 'running', 'paused'];

/**
 * Why the QEMU `q` is an orphan, or undefined when it is not one (or not provably ours): its QMP socket lies in a
 * directory of the data dir, and either no VM record has that directory, or the record there rests and records
 * another process. A record some live vmfork process is working on, or one heal will roll back, is left alone.
 */
export function orphanQemuReason(q: ScannedQemu, scan: Pick<GcScan, 'vms' | 'replicas' | 'templates'>, healing: ReadonlySet<string>): string | undefined {
  const dir = qmpDirOf(q);
  if (dir === undefined) return undefined;
  const vm = scan.vms.find((v) => v.dir === dir);
  if (!vm) return `its QMP socket is in ${dir}, and no VM record has that directory`;
  if (vmInUse(vm, scan, healing)) return undefined;
  if (vm.qemu?.pid === q.pid && vm.qemu.startTime === q.startTime) return undefined;
  return `VM ${vm.name} (${vm.state}) records ${vm.qemu ? `QEMU ${vm.qemu.pid}, not this one` : 'no running QEMU'}`;
}

/**
 * A record some live vmfork process is working on, or heal will roll back. A template's parent rests (running, then
 * paused at the cut, its QEMU quitting) while its template is being made; an internal clone is powered off between
 * phase 1's reboots while its replica is made: their owners are the template's and the replica's.
 */
function vmInUse(vm: ScannedVm, scan: Pick<GcScan, 'replicas' | 'templates'>, healing: ReadonlySet<string>): boolean {
  if (vm.busy || healing.has(vm.name)) return true;
  if (vm.role === 'template' && scan.templates.some((t) => t.name === vm.name && t.busy)) return true;
  return vm.role === 'clone' && scan.replicas.some((r) => r.busy);
}

/** Roles whose records a user cannot start again once their QEMU is gone: only a destroy is left for them. */
const DISPOSABLE_ROLES = ['child', 'warm', 'clone'];

/**
 * What to do with a VM record whose QEMU died: a forked child, warm process or internal clone outside any pool, and
 * without a checkpoint, is destroyed (it cannot be started again: it has no boot loader of its own, or never ran a
 * guest); anything else recorded running is only marked stopped (a cold-booted VM keeps its disk and starts again; a
 * pool's child is its pool's to power on or refresh; a VM with a checkpoint is reverted to it).
 */
export function deadVmVerdict(vm: ScannedVm, scan: Pick<GcScan, 'replicas' | 'templates'>, healing: ReadonlySet<string>): Pick<GcAction, 'kind' | 'reason'> | undefined {
  if (vmInUse(vm, scan, healing) || vm.qemuAlive) return undefined;
  const recordedRunning = RUNNING_STATES.includes(vm.state);
  if (DISPOSABLE_ROLES.includes(vm.role) && vm.pool === null && vm.checkpoints === 0) {
    if (recordedRunning) return { kind: 'destroy-vm', reason: `recorded ${vm.state} but its QEMU is gone; a ${vm.role} cannot be started again` };
    if (vm.state === 'failed' || (vm.state === 'stopped' && vm.lastError !== null)) {
      return { kind: 'destroy-vm', reason: `${vm.state} after its QEMU died (${vm.lastError ?? 'no error recorded'}); a ${vm.role} cannot be started again` };
    }
  }
  if (recordedRunning) return { kind: 'reconcile-vm', reason: `recorded ${vm.state} but its QEMU is gone: marked ${vm.state === 'warm' ? 'failed' : 'stopped'}` };
  return undefined;
}

/** Runtime files of a directory no QEMU uses any more: sockets nobody listens on, a pidfile of a process that is not its QEMU. */
function staleFiles(dir: string, files: RuntimeFiles, qemuDirs: ReadonlySet<string>): GcAction[] {
  if (qemuDirs.has(dir)) return [];
  return files.runtimeFiles.map((f) => ({
    kind: 'remove-file' as const,
    path: join(dir, f),
    dir,
    target: join(dir, f),
    reason: f === 'qemu.pid' ? `pidfile of pid ${files.pidfilePid ?? '?'}, which is not a QEMU of this directory` : 'socket of a QEMU that no longer runs',
  }));
}

function vmActions(scan: GcScan, healing: ReadonlySet<string>, qemuDirs: ReadonlySet<string>): GcAction[] {
  const out: GcAction[] = [];
  for (const vm of scan.vms) {
    const verdict = deadVmVerdict(vm, scan, healing);
    if (verdict) out.push({ ...verdict, name: vm.name, target: `VM ${vm.name}` } as GcAction);
    if (verdict?.kind === 'destroy-vm' || vmInUse(vm, scan, healing) || vm.qemuAlive) continue;
    out.push(...staleFiles(vm.dir, vm, qemuDirs));
  }
  const vmDirs = new Set(scan.vms.map((v) => v.dir));
  for (const t of scan.templates) if (!t.busy && !vmDirs.has(t.dir)) out.push(...staleFiles(t.dir, t, qemuDirs));
  return out;
}

function networkActions(scan: GcScan, healing: ReadonlySet<string>): GcAction[] {
  const out: GcAction[] = [];
  const vmNames = new Set(scan.vms.map((v) => v.name));
  // a template's parent is leased before its VM record is written (the template record comes first)
  const busyTemplates = new Set(scan.templates.filter((t) => t.busy).map((t) => t.name));
  for (const l of scan.leases) {
    if (vmNames.has(l.vm) || healing.has(l.vm) || busyTemplates.has(l.vm)) continue;
    out.push({ kind: 'release-lease', network: l.network, vm: l.vm, target: `${l.ip} on ${l.network} (tap ${l.tap})`, reason: `leased to ${l.vm}, which has no VM record` });
  }
  const leased = new Set(scan.leases.map((l) => `${l.network}/${l.tap}`));
  const busyNets = new Set(scan.networks.filter((n) => n.busy).map((n) => n.name));
  for (const t of scan.taps) {
    if (leased.has(`${t.network}/${t.tap}`) || busyNets.has(t.network)) continue;
    out.push({ kind: 'delete-tap', ...t, target: `${t.netns}/${t.tap}`, reason: `a tap in network ${t.network}'s namespace that no lease names` });
  }
  const known = new Set(scan.networks.map((n) => n.netns));
  for (const ns of scan.namespaces) {
    // a host's instance of a network (`<netns>@<host>`) is its network's, and its agent's to remove
    if (known.has(ns.name.split('@')[0] ?? ns.name) || ns.foreign.length > 0) continue;
    const ownerId = ns.alias?.startsWith('vmfork:') ? ns.alias.slice('vmfork:'.length) : null;
    out.push({ kind: 'delete-netns', netns: ns.name, ownerId, target: `netns ${ns.name}`, reason: "named with this data dir's prefix, and no network record has it" });
  }
  return out;
}

/**
 * A VM's cgroup outlives its record when a teardown was cut short, or its QEMU was still exiting then. Only an
 * empty one is removed: one holding a process may be a warm process's, renamed to the child that took it.
 */
function cgroupActions(scan: GcScan): GcAction[] {
  const vmNames = new Set(scan.vms.map((v) => v.name));
  return scan.cgroups
    .filter((c) => c.empty && !vmNames.has(c.vm))
    .map((c) => ({ kind: 'remove-cgroup' as const, vm: c.vm, target: c.paths.join(', '), reason: `the cgroup of VM ${c.vm}, which has no record` }));
}

function dirActions(scan: GcScan): GcAction[] {
  const out: GcAction[] = [];
  const recorded = {
    vm: new Set(scan.vms.map((v) => v.dir)),
    template: new Set(scan.templates.map((t) => t.dir)),
    replica: new Set(scan.replicas.map((r) => r.dir)),
  };
  for (const of of ['vm', 'template', 'replica'] as const) {
    for (const path of scan.dirs[of]) {
      if (recorded[of].has(path)) continue;
      // a template's parent VM lives in its template's directory
      if (of === 'template' && recorded.vm.has(path)) continue;
      out.push({ kind: 'remove-dir', path, of, target: path, reason: `no ${of} record has this directory (in ${dirname(path)})` });
    }
  }
  const vmNames = new Set(scan.vms.map((v) => v.name));
  for (const path of scan.dirs.promoted) {
    if (!vmNames.has(basename(path))) out.push({ kind: 'remove-dir', path, of: 'promoted', target: path, reason: `disks promoted for VM ${basename(path)}, which has no record` });
  }
  return out;
}

/**
 * Replicas nothing references — no pool, and no child of any of their templates — and templates of a replica
 * that is gone. Only while no task is live: a converge or a push may be about to link the replica it just made.
 * Templates made by hand (no replica) are the user's and never collected.
 */
function unreferencedActions(scan: GcScan, healing: ReadonlySet<string>): GcAction[] {
  if (scan.liveTasks > 0 || scan.healable.some((h) => h.table === 'replicas' || h.table === 'templates')) return [];
  const out: GcAction[] = [];
  const replicaIds = new Set(scan.replicas.map((r) => r.id));
  for (const t of scan.templates) {
    if (t.replicaId === null || replicaIds.has(t.replicaId) || t.busy || t.children.length > 0 || healing.has(t.name)) continue;
    out.push({ kind: 'remove-template', name: t.name, target: `template ${t.name}`, reason: `its replica ${t.replicaId} is gone and it has no child` });
  }
  for (const r of scan.replicas) {
    const templates = scan.templates.filter((t) => t.replicaId === r.id);
    if (r.busy || r.pools.length > 0 || templates.some((t) => t.busy || t.children.length > 0)) continue;
    const with_ = templates.length ? ` (with template ${templates.map((t) => t.name).join(', ')})` : '';
    out.push({ kind: 'remove-replica', id: r.id, target: `replica ${r.id}${with_}`, reason: 'no pool uses it and no child forks from its template' });
  }
  return out;
}

/**
 * A gc pass's decisions, made from one scan and nothing else (no I/O: the unit tests feed it fabricated scans).
 * Records left transitional by a dead vmfork go to heal first; whatever heal will roll back is not planned twice.
 */
export function planGc(scan: GcScan): GcAction[] {
  const healing = new Set(scan.healable.filter((h) => h.table === 'vms').map((h) => h.name));
  const actions: GcAction[] = scan.healable.map((h) => ({
    kind: 'heal-record' as const,
    table: h.table,
    name: h.name,
    target: `${h.table.replace(/s$/, '')} ${h.name}`,
    reason: `left ${h.state} by vmfork pid ${h.ownerPid ?? '?'}, which is gone`,
  }));
  const qemuDirs = new Set<string>();
  for (const q of scan.qemus) {
    const dir = qmpDirOf(q);
    if (dir !== undefined) qemuDirs.add(dir);
    const reason = orphanQemuReason(q, scan, healing);
    if (reason && dir !== undefined) actions.push({ kind: 'kill-qemu', pid: q.pid, startTime: q.startTime, dir, target: `QEMU ${q.pid}`, reason });
  }
  actions.push(...vmActions(scan, healing, qemuDirs), ...networkActions(scan, healing), ...cgroupActions(scan), ...dirActions(scan), ...unreferencedActions(scan, healing));
  return actions.sort((a, b) => GC_ACTION_KINDS.indexOf(a.kind) - GC_ACTION_KINDS.indexOf(b.kind));
}
