import { countLeases, listNetworkRows, requireNetwork, type Db, type NetworkRow } from '../store/index.js';
import { parseCidr, vmRange } from './cidr.js';
import { listNamespaces } from './ip.js';
import { leasesFor, type Lease } from './leases.js';
import { healthProblems, inspectNamespace, type NamespaceReport } from './netns.js';
import { hostSpec } from './networks.js';

export interface NetworkSummary {
  name: string;
  cidr: string;
  netns: string;
  bridge: string;
  gateway: string;
  state: NetworkRow['state'];
  createdAt: string;
  /** Whether the namespace exists on this host now (false after a reboot until something ensures it). */
  present: boolean;
  used: number;
  free: number;
  total: number;
}

export interface NetworkDetail extends NetworkSummary {
  leases: Lease[];
  /** What the namespace holds; null without root, because entering a namespace needs it. */
  host: NamespaceReport | null;
  /** Why the namespace is not as vmfork built it ([] when healthy); null without root. */
  problems: string[] | null;
}

function summarize(net: NetworkRow, used: number, namespaces: readonly string[]): NetworkSummary {
  const total = vmRange(parseCidr(net.cidr)).count;
  return {
    name: net.name,
    cidr: net.cidr,
    netns: net.netns,
    bridge: net.bridge,
    gateway: net.gateway,
    state: net.state,
    createdAt: net.created_at,
    present: namespaces.includes(net.netns),
    used,
    free: total - used,
    total,
  };
}

/** Every network with its address usage and whether its namespace exists. Read-only; works without root. */
export async function listNetworks(db: Db): Promise<NetworkSummary[]> {
  const [rows, counts, namespaces] = await Promise.all([listNetworkRows(db), countLeases(db), listNamespaces()]);
  return rows.map((r) => summarize(r, counts.get(r.name) ?? 0, namespaces));
}

/** One network with its leases and, as root, a health report of its namespace. */
export async function showNetwork(db: Db, name: string, uid: number | undefined = process.getuid?.()): Promise<NetworkDetail> {
  const net = await requireNetwork(db, name);
  const [leases, namespaces] = await Promise.all([leasesFor(db, name), listNamespaces()]);
  const host = uid === 0 ? await inspectNamespace(net.netns, net.bridge) : null;
  return {
    ...summarize(net, leases.length, namespaces),
    leases,
    host,
    problems: host ? healthProblems(host, hostSpec(net)) : null,
  };
}
