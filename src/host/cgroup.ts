import { createHash } from 'node:crypto';
import { access, mkdir, readdir, readFile, rename, rmdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { isVmforkError } from '../errors.js';
import { waitUntil } from '../util/index.js';
import { detectCgroups, type CgroupController, type CgroupHierarchy, type CgroupSupport, type CgroupSys } from './cgroup-detect.js';

/**
 * Each VM's QEMU gets a cgroup of its own: memory limit, CPU weight, pids limit (docs/cgroups.md). Placement never
 * fails a VM: where cgroups cannot be used (not mounted, no permission, a controller missing) QEMU runs without,
 * the placement says why and `vmfork doctor` reports it.
 *
 * A VM's cgroup is `<hierarchy>/<VMFORK_CGROUP_PARENT or />/vmfork-<data dir tag>.<vm>`: flat, one level under the
 * parent, so a VM competes for CPU with the host's other top-level groups and processes by its own weight (an
 * intermediate group per data dir would make all its VMs together weigh as much as one process). The tag (a hash
 * of the data dir's path) keeps two data dirs' VMs of the same name apart and lets gc list its own.
 */

/**
 * QEMU's own memory beyond guest RAM and its TCG code cache. Measured on this host (QEMU 7.2, TCG, q35, 1 vCPU,
 * 512 MiB guest booted to its login prompt, the VM's memory cgroup read on v1):
 * - tb-size 32 (templates and children): cgroup peak 245 MiB = 176 MiB of guest RAM touched + 32 MiB code cache
 *   (full) + 37 MiB of QEMU's own; RSS outside the guest RAM mapping 91 MiB, 29 MiB of it shared libraries (page
 *   cache, charged to whoever loaded them first). Forked 384 MiB children idle at 78 MiB RSS outside guest RAM.
 * - no tb-size (a cold `vm boot`, QEMU's 1 GiB default): 586 MiB = 172 MiB guest RAM + 352 MiB code cache used
 *   + 62 MiB of QEMU's own.
 * 96 MiB is half again the larger measure: device and block buffers, migration and thread stacks come and go.
 */
export const QEMU_OVERHEAD_MIB = 96;
/** QEMU 7.2's TCG code cache when no tb-size is given: 1 GiB on a 64-bit host. */
export const QEMU_DEFAULT_TB_MIB = 1024;
/**
 * QEMU's threads (main, RCU, one per vCPU, I/O and up to 64 block-layer workers) count against pids.max; measured
 * 4-5 idle and 8 during a cold boot (1 vCPU). The limit is those 64 workers twice over, plus the vCPUs: enough for
 * any legitimate QEMU, a wall against a fork bomb from an escaped one.
 */
export const PIDS_BASE = 128;

const MiB = 1024 ** 2;

/** What a VM's limits depend on (a VmSpec has these fields). */
export interface CgroupShape {
  memoryMiB: number;
  cpus: number;
  accel: string;
  tbSizeMiB?: number;
}

export interface CgroupLimits {
  memoryBytes: number;
  /** v2 cpu.weight (default 100 per cgroup): 100 per vCPU. */
  cpuWeight: number;
  /** v1 cpu.shares (default 1024): 1024 per vCPU, the same weight as that many busy processes. */
  cpuShares: number;
  pidsMax: number;
}

export function vmCgroupLimits(shape: CgroupShape): CgroupLimits {
  const codeCache = shape.accel === 'tcg' ? (shape.tbSizeMiB ?? QEMU_DEFAULT_TB_MIB) : 0;
  return {
    memoryBytes: (shape.memoryMiB + codeCache + QEMU_OVERHEAD_MIB) * MiB,
    cpuWeight: Math.min(10_000, Math.max(1, 100 * shape.cpus)),
    cpuShares: 1024 * shape.cpus,
    pidsMax: PIDS_BASE + shape.cpus,
  };
}

export interface VmCgroupRequest {
  /** The data dir's root: VMs of different data dirs never share a cgroup name. */
  scope: string;
  vm: string;
  shape: CgroupShape;
}

export interface CgroupPlacement {
  /** True when QEMU sits in a cgroup with every limit written, in every hierarchy. */
  placed: boolean;
  version: CgroupSupport['version'];
  /** The cgroup directories QEMU was moved into. */
  paths: string[];
  limits: CgroupLimits;
  /** What was done, or why (part of) it was not. */
  why: string;
}

/** `vmfork-<tag>.`: VM names are RFC 1123 labels (no dots), so the dot ends the tag unambiguously. */
export function cgroupPrefix(scope: string): string {
  return `vmfork-${createHash('sha256').update(resolve(scope)).digest('hex').slice(0, 10)}.`;
}

/** The parent cgroup (relative to each hierarchy's root) from VMFORK_CGROUP_PARENT, or why it is unusable. */
export function cgroupParent(env: NodeJS.ProcessEnv = process.env): { parent: string } | { why: string } {
  const raw = env.VMFORK_CGROUP_PARENT ?? '/';
  const parts = raw.split('/').filter(Boolean);
  if (parts.some((p) => p === '.' || p === '..' || !/^[A-Za-z0-9_.@:-]+$/.test(p))) return { why: `VMFORK_CGROUP_PARENT "${raw}" is not a plain cgroup path` };
  return { parent: parts.join('/') };
}

interface Resolved {
  support: CgroupSupport;
  parent: string;
}

/** The hierarchies to use and the parent inside them, or why cgroups are off. */
export async function resolveCgroups(sys: CgroupSys = {}): Promise<Resolved | { why: string; support?: CgroupSupport }> {
  const env = sys.env ?? process.env;
  if (env.VMFORK_CGROUPS === 'off') return { why: 'turned off by VMFORK_CGROUPS=off' };
  const parent = cgroupParent(env);
  if ('why' in parent) return parent;
  const support = await detectCgroups(sys);
  if (support.version === 'none') return { why: 'no cgroup hierarchy with memory, cpu or pids is mounted', support };
  return { support, parent: parent.parent };
}

/**
 * v2 only lets a cgroup use a controller its parent enabled in cgroup.subtree_control, level by level from the root
 * down; a non-root cgroup that holds processes cannot enable any (EBUSY: set VMFORK_CGROUP_PARENT to a delegated,
 * empty subtree then).
 */
async function enableV2Controllers(h: CgroupHierarchy, parent: string): Promise<void> {
  let dir = h.mount;
  for (const part of ['', ...parent.split('/').filter(Boolean)]) {
    dir = part ? join(dir, part) : dir;
    if (part) await mkdir(dir).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'EEXIST') throw e; });
    const enabled = (await readFile(join(dir, 'cgroup.subtree_control'), 'utf8').catch(() => '')).split(/\s+/);
    const wanted = h.controllers.filter((c) => !enabled.includes(c));
    if (wanted.length) await writeFile(join(dir, 'cgroup.subtree_control'), wanted.map((c) => `+${c}`).join(' '));
  }
}

/** [file, value, optional]: optional files exist only with swap accounting; writing absent ones is skipped. */
function limitWrites(version: 1 | 2, c: CgroupController, l: CgroupLimits): [string, string, boolean][] {
  const bytes = String(l.memoryBytes);
  if (version === 1) {
    // memsw must stay ≥ the memory limit at every write: lift it, set the limit, then bound it (no swap beyond it)
    if (c === 'memory') return [['memory.memsw.limit_in_bytes', '-1', true], ['memory.limit_in_bytes', bytes, false], ['memory.memsw.limit_in_bytes', bytes, true]];
    if (c === 'cpu') return [['cpu.shares', String(l.cpuShares), false]];
    return [['pids.max', String(l.pidsMax), false]];
  }
  if (c === 'memory') return [['memory.max', bytes, false], ['memory.swap.max', '0', true]];
  if (c === 'cpu') return [['cpu.weight', String(l.cpuWeight), false]];
  return [['pids.max', String(l.pidsMax), false]];
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

async function placeIn(h: CgroupHierarchy, parent: string, dir: string, pid: number, limits: CgroupLimits): Promise<void> {
  if (h.version === 2) await enableV2Controllers(h, parent);
  await mkdir(dir).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'EEXIST') throw e; });
  for (const c of h.controllers) {
    for (const [file, value, optional] of limitWrites(h.version, c, limits)) {
      if (optional && !(await exists(join(dir, file)))) continue;
      await writeFile(join(dir, file), value);
    }
  }
  // cgroup.procs moves every thread of the process (v1's `tasks` would move one)
  await writeFile(join(dir, 'cgroup.procs'), String(pid));
}

function errText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ? `${e.code} on ${e.path ?? '?'}` : String(err);
}

/**
 * Moves the running process `pid` (a VM's QEMU, just spawned) into its VM's cgroup in every hierarchy, with the
 * limits written first. Never throws: what could not be done is in `why`, and the VM runs without that part.
 */
export async function placeInCgroup(pid: number, req: VmCgroupRequest, sys: CgroupSys = {}): Promise<CgroupPlacement> {
  const limits = vmCgroupLimits(req.shape);
  const r = await resolveCgroups(sys);
  if ('why' in r) return { placed: false, version: r.support?.version ?? 'none', paths: [], limits, why: r.why };
  const name = `${cgroupPrefix(req.scope)}${req.vm}`;
  const paths: string[] = [];
  const failed: string[] = [];
  for (const h of r.support.hierarchies) {
    const dir = join(h.mount, r.parent, name);
    try {
      await placeIn(h, r.parent, dir, pid, limits);
      paths.push(dir);
    } catch (err) {
      failed.push(`${h.controllers.join(',')} (v${h.version}): ${errText(err)}`);
    }
  }
  const missing = r.support.missing.length ? [`no hierarchy offers ${r.support.missing.join(', ')}`] : [];
  const problems = [...failed, ...missing];
  return { placed: problems.length === 0, version: r.support.version, paths, limits, why: problems.length ? problems.join('; ') : `in ${paths.join(', ')}` };
}

/** A VM's cgroup directories that exist now (one per hierarchy), by VM name: gc's view of this data dir's cgroups. */
export async function listVmCgroups(scope: string, sys: CgroupSys = {}): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  const r = await resolveCgroups(sys);
  if ('why' in r) return out;
  const prefix = cgroupPrefix(scope);
  for (const h of r.support.hierarchies) {
    const parentDir = join(h.mount, r.parent);
    const entries = await readdir(parentDir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      if (!e.isDirectory() || !e.name.startsWith(prefix)) continue;
      const vm = e.name.slice(prefix.length);
      out.set(vm, [...(out.get(vm) ?? []), join(parentDir, e.name)]);
    }
  }
  return out;
}

/** True when none of these cgroups holds a process (gc removes only such: a live one may be a renamed VM's). */
export async function cgroupsEmpty(paths: readonly string[]): Promise<boolean> {
  for (const p of paths) if ((await readFile(join(p, 'cgroup.procs'), 'utf8').catch(() => '')).trim() !== '') return false;
  return true;
}

/**
 * Renames the cgroups process `pid` sits in to VM `vm`'s name: a warm process taken by a fork becomes a child of
 * another name, and its cgroup must follow, or the child's teardown would not find it. A rename cgroupfs refuses
 * (or a process outside our cgroups) leaves the old name: its cgroup is gc's once it is empty.
 */
export async function renameVmCgroupOf(scope: string, pid: number, vm: string, sys: CgroupSys = {}): Promise<void> {
  const r = await resolveCgroups(sys);
  if ('why' in r) return;
  const prefix = cgroupPrefix(scope);
  const lines = (sys.procCgroup ?? (await readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => ''))).split('\n');
  for (const h of r.support.hierarchies) {
    const line = lines.find((l) => {
      const list = l.split(':')[1];
      return h.version === 2 ? list === '' : (list ?? '').split(',').some((c) => (h.controllers as string[]).includes(c));
    });
    const path = line?.split(':').slice(2).join(':');
    if (!path || !basename(path).startsWith(prefix) || basename(path) === `${prefix}${vm}`) continue;
    await rename(join(h.mount, path), join(h.mount, dirname(path), `${prefix}${vm}`)).catch(() => undefined);
  }
}

/**
 * How long a removal waits for a cgroup to empty: a QEMU that was just stopped leaves it a moment after
 * `waitForExit` saw it end (its other threads still exiting, or the zombie not reaped yet), and rmdir says EBUSY.
 */
export const CGROUP_EMPTY_WAIT_MS = 5_000;

async function tryRmdir(dir: string): Promise<'gone' | 'busy' | 'refused'> {
  try {
    await rmdir(dir);
    return 'gone';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'gone' : code === 'EBUSY' ? 'busy' : 'refused';
  }
}

/**
 * Removes a VM's cgroups once its QEMU is gone; idempotent. One still holding a process after `waitMs` (or refused
 * otherwise) is left and returned: the VM's QEMU outlived its teardown, and gc removes the cgroup once it is empty.
 */
export async function removeVmCgroup(scope: string, vm: string, sys: CgroupSys = {}, waitMs = CGROUP_EMPTY_WAIT_MS): Promise<string[]> {
  const left: string[] = [];
  for (const dir of (await listVmCgroups(scope, sys)).get(vm) ?? []) {
    // rmdir, never a recursive rm: a cgroup's interface files vanish with it, and rmdir refuses a busy one
    const outcome = await waitUntil(async () => {
      const r = await tryRmdir(dir);
      return r === 'busy' ? undefined : r;
    }, { deadlineMs: waitMs, everyMs: 50, what: `cgroup ${dir} to empty` }).catch((err: unknown) => {
      if (isVmforkError(err) && err.code === 'VMFORK_TIMEOUT') return 'busy' as const;
      throw err;
    });
    if (outcome !== 'gone') left.push(dir);
  }
  return left;
}

/**
 * Whether a VM's QEMU would get its cgroup here, and why: doctor's check. It really makes (and removes) a probe
 * cgroup in every hierarchy, since being root does not prove it (a container's read-only cgroupfs, a v2 parent
 * that holds processes).
 */
export async function probeCgroups(sys: CgroupSys = {}): Promise<{ on: boolean; why: string }> {
  const r = await resolveCgroups(sys);
  if ('why' in r) return { on: false, why: r.why };
  const problems: string[] = r.support.missing.length ? [`no hierarchy offers ${r.support.missing.join(', ')}`] : [];
  for (const h of r.support.hierarchies) {
    const dir = join(h.mount, r.parent, `vmfork-probe-${process.pid}`);
    try {
      if (h.version === 2) await enableV2Controllers(h, r.parent);
      await mkdir(dir);
      await rmdir(dir);
    } catch (err) {
      problems.push(`cannot make a cgroup for ${h.controllers.join(',')} (v${h.version}): ${errText(err)}`);
    }
  }
  const where = r.support.hierarchies.map((h) => `${h.controllers.join(',')} at ${h.mount}`).join('; ');
  if (problems.length) return { on: false, why: `cgroup ${r.support.version}: ${problems.join('; ')}` };
  return {
    on: true,
    why: `cgroup ${r.support.version} (${where}) under /${r.parent}: each VM's QEMU gets memory ≤ RAM + code cache + ${QEMU_OVERHEAD_MIB} MiB, a CPU weight per vCPU, pids ≤ ${PIDS_BASE} + vCPUs`,
  };
}
