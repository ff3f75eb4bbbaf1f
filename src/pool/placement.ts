import { VmforkError, withContext } from '../errors.js';
import { childShape } from '../replica/index.js';
import { DEFAULT_CPU_ALLOCATION_RATIO } from '../host/index.js';
import { getDatastore, listHostRows, listVms, LOCAL_HOST_ID, type Db, type HostRow } from '../store/index.js';
import { childDiskBytes } from './disk-budget.js';
import { OVERHEAD_MIB } from './spec-limits.js';
import type { PoolSpec } from './spec.js';

/**
 * Placement (issue 14 item 4): which host of the fleet each new child of a placed pool goes to. A host's room is
 * counted from what its agent reported (its memory, its datastore's free bytes at the last heartbeat) minus what
 * the VMs recorded on it hold, as the one-host capacity check counts (capacity.ts): a forked child a quarter of its
 * RAM and QEMU's overhead, any other VM its whole RAM. Nothing is measured here: the hosts are elsewhere.
 */

/** A host as the planner sees it: how many more children of this pool fit, and how many it has already. */
export interface HostRoom {
  host: string;
  room: number;
  current: number;
  /** What bounds the room: the host's memory, its vCPUs or its datastore's free space (absent: not up). */
  by?: 'memory' | 'cpu' | 'disk';
}

/** The share of a host's memory children may take: the rest is its own (the agent, the page cache). */
export const MEMORY_SHARE = 0.9;

function placementError(message: string, details: Record<string, unknown>, code: 'VMFORK_HOST_NOT_FOUND' | 'VMFORK_HOST_STATE' | 'VMFORK_INSUFFICIENT_MEMORY' = 'VMFORK_HOST_NOT_FOUND'): VmforkError {
  const e = new VmforkError(code, message, { details });
  return withContext(e, 'pool spec: placement', { details: { problems: [{ path: 'placement.hosts', message }], field: 'placement', ...details } });
}

/**
 * The hosts a placed pool may use: those it names, else every host with an agent. A named host the fleet does not
 * have is refused (VMFORK_HOST_NOT_FOUND, naming it), as is one without the pool's datastore; of the rest, only the
 * `up` ones take new children.
 */
export async function placementHosts(db: Db, spec: PoolSpec): Promise<HostRow[]> {
  const agents = (await listHostRows(db)).filter((h) => h.id !== LOCAL_HOST_ID && h.agent_listen !== null);
  const named = spec.placement?.hosts;
  if (named) {
    const unknown = named.filter((n) => !agents.some((h) => h.id === n));
    if (unknown.length) throw placementError(`unknown host${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}: the fleet's hosts are ${agents.map((h) => h.id).join(', ') || 'none (start vmfork host-agent on each)'}`, { hosts: unknown });
  }
  const chosen = named ? agents.filter((h) => named.includes(h.id)) : agents;
  if (!chosen.length) throw placementError('no host has an agent on this store: start `vmfork host-agent` on each host (docs/hosts.md)', {});
  for (const h of chosen) {
    if (!(await getDatastore(db, h.id, spec.datastore))) throw placementError(`host ${h.id} has no datastore "${spec.datastore}" (its agent's --datastore)`, { host: h.id, datastore: spec.datastore });
  }
  return chosen;
}

/** How many more children of `spec` each up host holds, with its children of the pool so far. */
export async function hostRooms(db: Db, spec: PoolSpec, hosts: readonly HostRow[], needsTemplate: (host: string) => boolean): Promise<HostRoom[]> {
  const { memoryMiB, cpus } = childShape(spec);
  const perChildMiB = Math.ceil(memoryMiB / 4) + OVERHEAD_MIB;
  const wholeMiB = memoryMiB + OVERHEAD_MIB;
  // a lazy first child's RAM is all its own (postcopy fills it), not copy-on-write over the host's template file
  const lazyExtraMiB = spec.placement?.lazyReplica ? memoryMiB - Math.ceil(memoryMiB / 4) : 0;
  const perChildDisk = await childDiskBytes(db, spec);
  const vms = await listVms(db);
  const out: HostRoom[] = [];
  for (const h of hosts) {
    const mine = vms.filter((v) => v.host_id === h.id);
    const current = mine.filter((v) => v.pool_name === spec.name).length;
    if (h.state !== 'up') {
      out.push({ host: h.id, room: 0, current });
      continue;
    }
    const held = mine.map((v) => vmHolds(v.spec_json, v.role));
    const heldMiB = held.reduce((sum, x) => sum + x.mib, 0);
    const fresh = needsTemplate(h.id);
    const freeMiB = Math.floor(((h.memory_bytes ?? 0) / 2 ** 20) * MEMORY_SHARE) - heldMiB - (fresh ? wholeMiB + lazyExtraMiB : 0);
    const byMemory = Math.max(0, Math.floor(freeMiB / perChildMiB));
    // CPU: the host's CPUs times its agent's allocation ratio, less the vCPUs of what runs there (a template's parent
    // included while it boots); cgroups weigh each VM 100 per vCPU, so vCPUs are the weight placement counts
    const vcpus = h.cpus === null ? Number.POSITIVE_INFINITY : Math.floor(h.cpus * (h.cpu_allocation_ratio ?? DEFAULT_CPU_ALLOCATION_RATIO));
    const freeVcpus = vcpus - held.reduce((sum, x) => sum + x.cpus, 0) - (fresh ? cpus : 0);
    const byCpu = Math.max(0, Math.floor(freeVcpus / Math.max(1, cpus)));
    const free = (await getDatastore(db, h.id, spec.datastore))?.free_bytes;
    const byDisk = free === null || free === undefined ? byMemory : Math.max(0, Math.floor(free / Math.max(1, perChildDisk)));
    const room = Math.min(byMemory, byCpu, byDisk);
    out.push({ host: h.id, room, current, by: room === byMemory ? 'memory' : room === byCpu ? 'cpu' : 'disk' });
  }
  return out;
}

/**
 * What a VM recorded on a host holds of it: a forked child a quarter of its RAM (copy-on-write over its template's
 * file) unless its RAM is its own (a lazy child), anything else all of it; QEMU's overhead each; its vCPUs.
 */
export function vmHolds(specJson: string, role: string): { mib: number; cpus: number } {
  let s: { memoryMiB?: unknown; cpus?: unknown; memory?: { kind?: unknown } } = {};
  try {
    s = JSON.parse(specJson) as typeof s;
  } catch {
    // an unreadable spec counts as a default VM
  }
  const mib = typeof s.memoryMiB === 'number' ? s.memoryMiB : 512;
  const shared = role === 'child' && s.memory?.kind === 'file';
  return { mib: (shared ? Math.ceil(mib / 4) : mib) + OVERHEAD_MIB, cpus: typeof s.cpus === 'number' ? s.cpus : 1 };
}

/**
 * Assigns each name to a host. spread: each child to the host with the fewest of the pool's children that still has
 * room (the hosts' order breaks ties); pack: to the host with the most that still has room, so the pool fills as
 * few hosts as fit. Refused, with every host's figures, when the hosts do not hold them all.
 */
export function planPlacement(names: readonly string[], hosts: readonly HostRoom[], strategy: 'spread' | 'pack'): Map<string, string> {
  const total = hosts.reduce((s, h) => s + h.room, 0);
  if (total < names.length) {
    const figures = hosts.map((h) => `${h.host}: room for ${h.room}${h.by ? ` (by ${h.by})` : ''}`).join(', ');
    throw placementError(`${names.length} children to place, the hosts hold ${total} more (${figures})`, { asked: names.length, fit: total, hosts: hosts.map((h) => ({ ...h })) }, 'VMFORK_INSUFFICIENT_MEMORY');
  }
  const state = hosts.map((h) => ({ ...h }));
  const out = new Map<string, string>();
  for (const name of names) {
    const open = state.filter((h) => h.room > 0);
    const pick = open.reduce((best, h) => ((strategy === 'spread' ? h.current < best.current : h.current > best.current) ? h : best));
    out.set(name, pick.host);
    pick.room -= 1;
    pick.current += 1;
  }
  return out;
}
