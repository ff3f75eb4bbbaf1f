import { totalmem } from 'node:os';
import { availableMemoryMiB, DEFAULT_CPU_ALLOCATION_RATIO, freeSpace } from '../host/index.js';
import { MEMORY_SHARE, vmHolds } from '../pool/index.js';
import { listDatastores, listHostRows, listVms, liveProcesses, type DatastoreRow, type HostRow } from '../store/index.js';
import { hereHost, type VmDeps } from '../vm/index.js';
import type { VmforkMetrics } from './definitions.js';
import { processMemory } from './proc-memory.js';

const MiB = 2 ** 20;

/**
 * Hosts as placement sees them (pool/placement.ts): what each VM recorded on a host holds of its memory and vCPUs
 * (`vmHolds`, the same count placement makes), against what the host has. The host this server runs on is measured
 * here (its memory, its datastores' filesystems, its QEMUs' /proc); another host's figures are what its agent
 * reported at its last heartbeat.
 */
export async function collectHostGauges(deps: VmDeps, m: VmforkMetrics): Promise<void> {
  const here = hereHost(deps);
  const [hosts, stores, vms, procs] = await Promise.all([listHostRows(deps.db), listDatastores(deps.db), listVms(deps.db), liveProcesses(deps.db)]);
  const mine = procs.filter((p) => p.host === here);
  const [memory, space, hereMiB] = await Promise.all([
    Promise.all(mine.map(async (p) => ({ vm: p.vm, memory: await processMemory(p.pid, p.start_time).catch(() => undefined) }))),
    Promise.all(stores.map(async (d) => ({ d, space: d.host_id === here ? await freeSpace(d.path).catch(() => undefined) : undefined }))),
    availableMemoryMiB().catch(() => undefined),
  ]);
  for (const g of [m.hostUp, m.hostMemory, m.hostVcpus, m.datastoreBytes, m.qemuProcesses, m.qemuResident, m.qemuPss]) g.reset();

  for (const h of hosts) {
    const held = vms.filter((v) => v.host_id === h.id).map((v) => vmHolds(v.spec_json, v.role));
    const heldBytes = held.reduce((s, x) => s + x.mib, 0) * MiB;
    const heldCpus = held.reduce((s, x) => s + x.cpus, 0);
    m.hostUp.set({ host: h.id }, h.state === 'up' ? 1 : 0);
    setMemory(m, h, here, heldBytes, hereMiB);
    m.hostVcpus.set({ host: h.id, kind: 'reserved' }, heldCpus);
    // this server's own host has no agent: no allocation ratio was given for it, and the one-host capacity check counts no CPU
    if (h.cpus !== null) {
      const total = Math.floor(h.cpus * (h.cpu_allocation_ratio ?? DEFAULT_CPU_ALLOCATION_RATIO));
      m.hostVcpus.set({ host: h.id, kind: 'total' }, total);
      m.hostVcpus.set({ host: h.id, kind: 'free' }, total - heldCpus);
    }
    m.qemuProcesses.set({ host: h.id }, procs.filter((p) => p.host === h.id).length);
  }
  for (const { d, space: s } of space) setDatastore(m, d, s);
  for (const { vm, memory: mem } of memory) {
    if (!mem) continue;
    m.qemuResident.set({ vm }, mem.residentBytes);
    if (mem.pssBytes !== undefined) m.qemuPss.set({ vm }, mem.pssBytes);
  }
}

/**
 * This host: free is MemAvailable, what the one-host capacity check reads (pool/capacity.ts). An agent's host: free
 * is its share for children less what its VMs hold, what placement counts; below zero when they overcommit it.
 */
function setMemory(m: VmforkMetrics, h: HostRow, here: string, heldBytes: number, hereMiB: number | undefined): void {
  const local = h.id === here;
  const total = local ? totalmem() : h.memory_bytes;
  m.hostMemory.set({ host: h.id, kind: 'reserved' }, heldBytes);
  if (total !== null) m.hostMemory.set({ host: h.id, kind: 'total' }, total);
  if (local && hereMiB !== undefined) m.hostMemory.set({ host: h.id, kind: 'free' }, hereMiB * MiB);
  if (!local && total !== null) m.hostMemory.set({ host: h.id, kind: 'free' }, Math.floor(total * MEMORY_SHARE) - heldBytes);
}

/** Measured here for this host's datastores; another host's is its agent's last free figure (its size is not reported). */
function setDatastore(m: VmforkMetrics, d: DatastoreRow, space: { freeBytes: number; totalBytes: number } | undefined): void {
  const labels = { host: d.host_id, datastore: d.name };
  if (space) {
    m.datastoreBytes.set({ ...labels, kind: 'size' }, space.totalBytes);
    m.datastoreBytes.set({ ...labels, kind: 'free' }, space.freeBytes);
  } else if (d.free_bytes !== null) {
    m.datastoreBytes.set({ ...labels, kind: 'free' }, d.free_bytes);
  }
}
