import { randomBytes } from 'node:crypto';
import { VmforkError } from '../errors.js';
import { run } from '../util/index.js';
import { ip, isAlreadyExists } from './ip.js';

/** Every network's VXLAN device has this name inside the network's per-host namespace (one per namespace). */
export const VXLAN_NAME = 'vmf-vx';
/** IANA's VXLAN port. Every host of a fleet listens on it, in the namespace where its agent's address is. */
export const VXLAN_PORT = 4789;

/** How a host's instance of a network joins the other hosts' (docs/networks.md, "Across hosts"). */
export interface VxlanSpec {
  vni: number;
  /** This host's address (its agent's --listen address): the tunnel's source. */
  local: string;
  /** The other hosts' addresses: broadcast and unknown traffic is sent to each (head-end replication). */
  peers: string[];
}

export interface VxlanReport {
  up: boolean;
  onBridge: boolean;
  alias: string | undefined;
  vni: number | undefined;
  local: string | undefined;
}

/** A link as `ip -d -j link show` prints it: only what inspect reads. */
export interface VxlanLink {
  ifname: string;
  flags?: string[];
  master?: string;
  ifalias?: string;
  linkinfo?: { info_kind?: string; info_data?: { id?: number; local?: string } };
}

export function isOurVxlan(l: VxlanLink): boolean {
  return l.ifname === VXLAN_NAME && l.linkinfo?.info_kind === 'vxlan';
}

export function vxlanReport(l: VxlanLink, bridge: string): VxlanReport {
  return { up: l.flags?.includes('UP') ?? false, onBridge: l.master === bridge, alias: l.ifalias, vni: l.linkinfo?.info_data?.id, local: l.linkinfo?.info_data?.local };
}

export function vxlanProblems(r: VxlanReport | undefined, spec: VxlanSpec | undefined, alias: string): string[] {
  if (!spec) return r ? [`${VXLAN_NAME} joins this host-local network to other hosts`] : [];
  if (!r) return [`${VXLAN_NAME} is missing`];
  const problems: string[] = [];
  if (r.vni !== spec.vni || r.local !== spec.local) problems.push(`${VXLAN_NAME} is VNI ${r.vni ?? '?'} from ${r.local ?? '?'}, not VNI ${spec.vni} from ${spec.local}`);
  if (r.alias !== alias) problems.push(`${VXLAN_NAME} belongs to someone else (alias "${r.alias ?? ''}")`);
  if (!r.onBridge) problems.push(`${VXLAN_NAME} is not on the bridge`);
  if (!r.up) problems.push(`${VXLAN_NAME} is down`);
  return problems;
}

/**
 * Creates the namespace's VXLAN device. It is made here, in the agent's own namespace, where `local` is an address,
 * and then moved in: a VXLAN device keeps the UDP socket of the namespace it was created in, so the VMs' namespace
 * gets a port on the fleet's segment and still no address, route or socket of the host's. It is made under a random
 * name (two networks' devices may be made here at once) and renamed once inside; one that fails on the way is
 * deleted wherever it is.
 */
export async function createVxlan(netns: string, bridge: string, spec: VxlanSpec, alias: string): Promise<void> {
  const temp = `vmfx${randomBytes(4).toString('hex')}`;
  await ip(['link', 'add', temp, 'type', 'vxlan', 'id', String(spec.vni), 'dstport', String(VXLAN_PORT), 'local', spec.local]);
  let inside = false;
  try {
    await ip(['link', 'set', temp, 'netns', netns]);
    inside = true;
    await ip(['-n', netns, 'link', 'set', temp, 'name', VXLAN_NAME]);
    await ip(['-n', netns, 'link', 'set', VXLAN_NAME, 'alias', alias]);
    await ip(['-n', netns, 'link', 'set', VXLAN_NAME, 'master', bridge]);
    await ip(['-n', netns, 'link', 'set', VXLAN_NAME, 'up']);
  } catch (err) {
    if (inside) {
      await ip(['-n', netns, 'link', 'del', temp], { allowFailure: true });
      if (!isAlreadyExists(err)) await ip(['-n', netns, 'link', 'del', VXLAN_NAME], { allowFailure: true });
    } else {
      await ip(['link', 'del', temp], { allowFailure: true });
    }
    throw err;
  }
}

interface FdbEntry {
  mac: string;
  dst?: string;
}

const FLOOD = '00:00:00:00:00:00';

/**
 * Makes the device's flood list exactly the fleet's other hosts: one all-zero entry per peer, added for a host that
 * joined, removed for one that left. Learned entries (a VM's MAC behind a peer) are the kernel's and left alone.
 */
export async function syncVxlanPeers(netns: string, peers: readonly string[]): Promise<{ added: string[]; removed: string[] }> {
  const r = await run('bridge', ['-n', netns, '-j', 'fdb', 'show', 'dev', VXLAN_NAME], { timeoutMs: 10_000, errorCode: 'VMFORK_NETWORK_FAILED' });
  let entries: FdbEntry[];
  try {
    entries = r.stdout.trim() ? (JSON.parse(r.stdout) as FdbEntry[]) : [];
  } catch (err) {
    throw new VmforkError('VMFORK_NETWORK_FAILED', `bridge fdb show in ${netns} printed invalid JSON`, { cause: err });
  }
  const have = new Set(entries.filter((e) => e.mac === FLOOD && e.dst).map((e) => e.dst as string));
  const want = new Set(peers);
  const added = [...want].filter((p) => !have.has(p));
  const removed = [...have].filter((p) => !want.has(p));
  for (const p of added) await bridgeFdb(netns, ['append', FLOOD, 'dev', VXLAN_NAME, 'dst', p]);
  for (const p of removed) await bridgeFdb(netns, ['del', FLOOD, 'dev', VXLAN_NAME, 'dst', p]);
  return { added, removed };
}

async function bridgeFdb(netns: string, args: string[]): Promise<void> {
  try {
    await run('bridge', ['-n', netns, 'fdb', ...args], { timeoutMs: 10_000, errorCode: 'VMFORK_NETWORK_FAILED' });
  } catch (err) {
    // a concurrent sync did the same
    if (!(isAlreadyExists(err) || /No such file|not found/i.test((err as Error).message))) throw err;
  }
}

/** The address part of an agent's recorded URL (`http://10.0.0.5:8471`, `http://[fd00::5]:8471`). */
export function listenAddress(listen: string): string {
  const withScheme = /^[a-z]+:\/\//.test(listen) ? listen : `http://${listen}`;
  return new URL(withScheme).hostname.replace(/^\[(.*)\]$/, '$1');
}
