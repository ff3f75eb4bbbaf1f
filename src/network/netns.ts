import { setTimeout as sleep } from 'node:timers/promises';
import { VmforkError } from '../errors.js';
import { ip, ipJson, isAlreadyExists, listNamespaces } from './ip.js';
import { bridgeMac } from './mac.js';
import { isTapName } from './names.js';
import { createVxlan, isOurVxlan, syncVxlanPeers, vxlanProblems, vxlanReport, type VxlanReport, type VxlanSpec } from './vxlan.js';

/** What the host side of one network is built from (all of it recorded in the networks table). */
export interface HostNetworkSpec {
  netns: string;
  bridge: string;
  gateway: string;
  prefix: number;
  /** Written into the bridge's alias; proves the namespace was made by this data dir. */
  ownerId: string;
  /**
   * The network's own namespace name when this is one host's instance of it (`<netns>@<host>`): the bridge's MAC is
   * drawn from it, so every host's bridge is the same gateway (address and MAC) to the VMs next to it.
   */
  baseNetns?: string;
  /** Set on an agent's host: the instance is joined to the other hosts' by this VXLAN. */
  vxlan?: VxlanSpec;
}

/** What a namespace holds, compared with what vmfork would have put there. */
export interface NamespaceReport {
  netns: string;
  present: boolean;
  loopbackUp: boolean;
  /** `mac` is the bridge's own address; ensureNamespace pins it (bridgeMacOf) so it never follows the taps. */
  bridge: { present: boolean; up: boolean; alias: string | undefined; addresses: string[]; mac?: string | undefined };
  taps: { name: string; up: boolean; onBridge: boolean }[];
  /** The VXLAN device joining this host's instance of a network to the others' (src/network/vxlan.ts). */
  vxlan?: VxlanReport;
  /** Links vmfork never creates: a veth or a moved-in NIC would be a way out of the namespace. */
  foreignLinks: string[];
  /** Routes through a gateway or a foreign link: a way out of the namespace. */
  routesOut: string[];
}

interface IpLink {
  ifname: string;
  flags?: string[];
  master?: string;
  ifalias?: string;
  address?: string;
  linkinfo?: { info_kind?: string; info_data?: { type?: string; id?: number; local?: string } };
}

interface IpRoute {
  type?: string;
  dst?: string;
  gateway?: string;
  via?: unknown;
  dev?: string;
}

export function ownerAlias(ownerId: string): string {
  return `vmfork:${ownerId}`;
}

/** The address a network's bridge is pinned to. */
export function bridgeMacOf(spec: Pick<HostNetworkSpec, 'ownerId' | 'netns' | 'baseNetns'>): string {
  return bridgeMac(`${spec.ownerId}/${spec.baseNetns ?? spec.netns}`);
}

function isOurTap(l: IpLink): boolean {
  return isTapName(l.ifname) && l.linkinfo?.info_kind === 'tun' && l.linkinfo.info_data?.type === 'tap';
}

/** Reads a namespace's links, bridge addresses and routes. Needs root (`ip -n` enters the namespace). */
export async function inspectNamespace(netns: string, bridge: string): Promise<NamespaceReport> {
  const report: NamespaceReport = {
    netns,
    present: (await listNamespaces()).includes(netns),
    loopbackUp: false,
    bridge: { present: false, up: false, alias: undefined, addresses: [] },
    taps: [],
    foreignLinks: [],
    routesOut: [],
  };
  if (!report.present) return report;
  const links = await ipJson<IpLink>(['-n', netns, '-d', 'link', 'show']);
  for (const l of links) {
    const up = l.flags?.includes('UP') ?? false;
    if (l.ifname === 'lo') report.loopbackUp = up;
    else if (l.ifname === bridge && l.linkinfo?.info_kind === 'bridge') report.bridge = { ...report.bridge, present: true, up, alias: l.ifalias, mac: l.address };
    else if (isOurTap(l)) report.taps.push({ name: l.ifname, up, onBridge: l.master === bridge });
    else if (isOurVxlan(l)) report.vxlan = vxlanReport(l, bridge);
    else report.foreignLinks.push(`${l.ifname} (${l.linkinfo?.info_kind ?? 'device'})`);
  }
  if (report.bridge.present) {
    const addrs = await ipJson<{ addr_info?: { local: string; prefixlen: number }[] }>(['-n', netns, '-4', 'addr', 'show', 'dev', bridge]);
    report.bridge.addresses = addrs.flatMap((a) => (a.addr_info ?? []).map((i) => `${i.local}/${i.prefixlen}`));
  }
  const ours = new Set(['lo', bridge, ...report.taps.map((t) => t.name), ...(report.vxlan ? ['vmf-vx'] : [])]);
  for (const family of ['-4', '-6']) {
    for (const r of await ipJson<IpRoute>(['-n', netns, family, 'route', 'show', 'table', 'all'])) {
      const blocked = r.type === 'unreachable' || r.type === 'prohibit' || r.type === 'blackhole';
      if (!blocked && (r.dst === 'default' || r.gateway !== undefined || r.via !== undefined || (r.dev !== undefined && !ours.has(r.dev)))) {
        report.routesOut.push(`${r.dst ?? '?'}${r.gateway ? ` via ${r.gateway}` : ''}${r.dev ? ` dev ${r.dev}` : ''}`);
      }
    }
  }
  return report;
}

/** Problems that make a namespace unusable, or [] when it is exactly what `spec` describes. */
export function healthProblems(r: NamespaceReport, spec: HostNetworkSpec): string[] {
  const problems: string[] = [];
  if (!r.present) return [`namespace ${r.netns} does not exist`];
  if (!r.loopbackUp) problems.push('loopback is down');
  if (!r.bridge.present) problems.push(`bridge ${spec.bridge} is missing`);
  else {
    if (!r.bridge.up) problems.push(`bridge ${spec.bridge} is down`);
    if (r.bridge.alias !== ownerAlias(spec.ownerId)) problems.push(`bridge ${spec.bridge} belongs to someone else (alias "${r.bridge.alias ?? ''}")`);
    if (!r.bridge.addresses.includes(`${spec.gateway}/${spec.prefix}`)) problems.push(`gateway ${spec.gateway}/${spec.prefix} is not on ${spec.bridge}`);
    if (r.bridge.mac !== undefined && r.bridge.mac !== bridgeMacOf(spec)) problems.push(`bridge ${spec.bridge} has MAC ${r.bridge.mac}, not its own ${bridgeMacOf(spec)}`);
  }
  problems.push(...vxlanProblems(r.vxlan, spec.vxlan, ownerAlias(spec.ownerId)));
  if (r.foreignLinks.length) problems.push(`foreign links: ${r.foreignLinks.join(', ')}`);
  if (r.routesOut.length) problems.push(`routes out: ${r.routesOut.join(', ')}`);
  return problems;
}

/**
 * Inspects, waiting (up to ~2 s) while the bridge exists without an alias: `ip link add` cannot set the alias, so a
 * concurrent ensure of the same network has a window of a few milliseconds in which its bridge is unlabelled.
 */
async function settledInspect(netns: string, bridge: string): Promise<NamespaceReport> {
  for (let i = 0; ; i++) {
    const r = await inspectNamespace(netns, bridge);
    if (!r.bridge.present || r.bridge.alias || i >= 20) return r;
    await sleep(100);
  }
}

/** Runs `ip ARGS`, treating "already exists" as success: a concurrent ensure may have done the same step. */
async function ipIdempotent(args: string[]): Promise<void> {
  try {
    await ip(args);
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }
}

/**
 * Makes the namespace exist and match `spec`: loopback up, the bridge (with our owner alias) up and carrying the
 * gateway address. No veth, no route, no NAT is ever added, so nothing can leave the namespace.
 * Idempotent: a healthy namespace is left untouched; one that vanished (host reboot) is rebuilt; missing pieces are
 * re-added. Refuses (without changing anything) a namespace holding anything we would not have put there, or whose
 * bridge belongs to another data dir. If this call created the namespace and then fails, it deletes it again.
 */
export async function ensureNamespace(spec: HostNetworkSpec): Promise<{ created: boolean; repaired: string[] }> {
  const { netns, bridge } = spec;
  let created = false;
  if (!(await listNamespaces()).includes(netns)) {
    try {
      await ip(['netns', 'add', netns]);
      created = true;
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
  }
  try {
    const before = await settledInspect(netns, bridge);
    if (before.foreignLinks.length || before.routesOut.length) {
      throw new VmforkError('VMFORK_NETWORK_FAILED', `namespace ${netns} holds what vmfork never creates (${healthProblems(before, spec).join('; ')}); refusing to use it`, {
        details: { netns, foreignLinks: before.foreignLinks, routesOut: before.routesOut },
      });
    }
    const foreignOwner = before.bridge.present && before.bridge.alias !== ownerAlias(spec.ownerId);
    if (foreignOwner || (!before.bridge.present && before.taps.length > 0)) {
      throw new VmforkError('VMFORK_NETWORK_EXISTS', `namespace ${netns} exists on this host but was not made by this data dir; pick another network name or set VMFORK_NETNS_PREFIX`, {
        details: { netns, bridgeAlias: before.bridge.alias },
      });
    }
    const repaired: string[] = [];
    if (!before.loopbackUp) {
      await ip(['-n', netns, 'link', 'set', 'lo', 'up']);
      repaired.push('loopback');
    }
    if (!before.bridge.present) {
      await ipIdempotent(['-n', netns, 'link', 'add', bridge, 'address', bridgeMacOf(spec), 'type', 'bridge']);
      await ip(['-n', netns, 'link', 'set', bridge, 'alias', ownerAlias(spec.ownerId)]);
      // every host's instance has the same bridge MAC, so the same IPv6 link-local address: none, or DAD fails
      if (spec.vxlan) await ip(['-n', netns, 'link', 'set', bridge, 'addrgenmode', 'none']);
      repaired.push('bridge');
    } else if (before.bridge.mac !== bridgeMacOf(spec)) {
      // a bridge made before vmfork pinned its MAC: pinning it now flushes the namespace's neighbours once
      await ip(['-n', netns, 'link', 'set', bridge, 'address', bridgeMacOf(spec)]);
      repaired.push('bridge address');
    }
    if (!before.bridge.addresses.includes(`${spec.gateway}/${spec.prefix}`)) {
      await ipIdempotent(['-n', netns, 'addr', 'add', `${spec.gateway}/${spec.prefix}`, 'dev', bridge]);
      repaired.push('gateway address');
    }
    if (!before.bridge.up) {
      await ip(['-n', netns, 'link', 'set', bridge, 'up']);
      repaired.push('bridge up');
    }
    if (spec.vxlan) repaired.push(...(await ensureVxlan(spec, spec.vxlan, before.vxlan)));
    // nothing changed: the first inspection is the state (a fork checks its network on every call; ~5 `ip` each)
    const problems = healthProblems(created || repaired.length ? await inspectNamespace(netns, bridge) : before, spec);
    if (problems.length) throw new VmforkError('VMFORK_NETWORK_FAILED', `namespace ${netns} is not healthy after setup: ${problems.join('; ')}`, { details: { netns, problems } });
    return { created, repaired: created ? [] : repaired };
  } catch (err) {
    if (created) await deleteNamespace(netns, spec.ownerId, bridge, { emptyIsOurs: true }).catch(() => undefined);
    throw err;
  }
}

/**
 * The instance's VXLAN device as `vxlan` says, and its flood list the fleet's other hosts: a device of another VNI
 * or source (the host's address changed) is replaced. Peers are synced on every ensure, so a host that joined is
 * flooded to from the next fork here on (and the agent's heartbeat syncs between forks).
 */
async function ensureVxlan(spec: HostNetworkSpec, vxlan: VxlanSpec, found: VxlanReport | undefined): Promise<string[]> {
  const repaired: string[] = [];
  const alias = ownerAlias(spec.ownerId);
  if (found && (found.vni !== vxlan.vni || found.local !== vxlan.local || found.alias !== alias)) {
    await ip(['-n', spec.netns, 'link', 'del', 'vmf-vx']);
    found = undefined;
  }
  if (!found) {
    await createVxlan(spec.netns, spec.bridge, vxlan, alias);
    repaired.push('vxlan');
  } else if (!found.onBridge || !found.up) {
    await ip(['-n', spec.netns, 'link', 'set', 'vmf-vx', 'master', spec.bridge]);
    await ip(['-n', spec.netns, 'link', 'set', 'vmf-vx', 'up']);
    repaired.push('vxlan up');
  }
  const peers = await syncVxlanPeers(spec.netns, vxlan.peers);
  if (peers.added.length || peers.removed.length) repaired.push('vxlan peers');
  return repaired;
}

/**
 * Deletes the namespace (with its bridge and taps) if it is ours: its bridge carries our owner alias, or it holds
 * nothing but loopback (and perhaps an unlabelled bridge) and `emptyIsOurs` says the caller made it. A namespace that belongs to someone else is left
 * alone ('foreign').
 */
export async function deleteNamespace(
  netns: string,
  ownerId: string,
  bridge: string,
  options: { emptyIsOurs?: boolean } = {},
): Promise<'deleted' | 'absent' | 'foreign'> {
  const r = await inspectNamespace(netns, bridge);
  if (!r.present) return 'absent';
  // An unlabelled bridge is what an ensure leaves if it dies between `link add` and setting the alias.
  const unclaimed = (!r.bridge.present || !r.bridge.alias) && r.taps.length === 0 && r.foreignLinks.length === 0;
  const ours = r.bridge.alias === ownerAlias(ownerId) || (unclaimed && options.emptyIsOurs === true);
  if (!ours) return 'foreign';
  await ip(['netns', 'del', netns]);
  return 'deleted';
}
