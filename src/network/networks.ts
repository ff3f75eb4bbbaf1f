import { randomUUID } from 'node:crypto';
import { VmforkError, isVmforkError } from '../errors.js';
import { actorFor } from '../host/index.js';
import type { Actor } from '../state/index.js';
import {
  deleteNetworkRow,
  getHost,
  getNetwork,
  listHostRows,
  LOCAL_HOST_ID,
  networkVni,
  insertNetwork,
  listLeases,
  NO_OWNER,
  requireNetwork,
  transition,
  withWriteLock,
  type Db,
  type NetworkRow,
} from '../store/index.js';
import { gatewayOf, parseCidr } from './cidr.js';
import { requireRoot } from './ip.js';
import { assertValidNetworkName, BRIDGE_NAME, DEFAULT_NETWORK, dataDirNetnsPrefix, instanceNetns, netnsName } from './names.js';
import { deleteNamespace, ensureNamespace, type HostNetworkSpec } from './netns.js';
import { listenAddress } from './vxlan.js';

export interface CreateNetworkOptions {
  name: string;
  cidr: string;
  /** Namespace name prefix. @default VMFORK_NETNS_PREFIX, else this data dir's own prefix (see names.ts) */
  netnsPrefix?: string;
  /** The host whose instance is built now (this process's). @default the local host */
  host?: string;
}

export interface CreatedNetwork {
  network: NetworkRow;
  /** The CIDR as given when it had host bits set and was normalized (e.g. `10.0.0.5/24` → `10.0.0.0/24`). */
  normalizedFrom: string | undefined;
}

export function hostSpec(net: NetworkRow): HostNetworkSpec {
  return { netns: net.netns, bridge: net.bridge, gateway: net.gateway, prefix: parseCidr(net.cidr).prefix, ownerId: net.owner_id };
}

/**
 * What `host`'s instance of a network is made of. The local host's is the network's own namespace, as on one
 * machine. An agent's host has its own namespace, the same bridge and gateway (address and MAC: the VMs next to it
 * see one gateway wherever they run), and a VXLAN device sending to every other agent's address, under the
 * network's VNI (drawn once, in the store).
 */
export async function instanceSpec(db: Db, net: NetworkRow, host: string): Promise<HostNetworkSpec> {
  const base = hostSpec(net);
  if (host === LOCAL_HOST_ID) return base;
  const self = await getHost(db, host);
  if (!self?.agent_listen) {
    throw new VmforkError('VMFORK_HOST_NOT_FOUND', `host "${host}" has no agent address to join network "${net.name}" from`, { details: { host, network: net.name } });
  }
  const vni = await networkVni(db, net.name);
  const peers = (await listHostRows(db)).filter((h) => h.id !== host && h.id !== LOCAL_HOST_ID && h.agent_listen).map((h) => listenAddress(h.agent_listen as string));
  return { ...base, netns: instanceNetns(net.netns, host), baseNetns: net.netns, vxlan: { vni, local: listenAddress(self.agent_listen), peers: [...new Set(peers)] } };
}

/**
 * Registers a network and builds its namespace. Everything is validated before the host is touched; the record is
 * inserted first (state 'creating', owned by this process) so its primary key serializes concurrent creates of one
 * name. If the host setup fails, the namespace is rolled back and the record removed: nothing is left behind.
 */
export async function createNetwork(db: Db, options: CreateNetworkOptions): Promise<CreatedNetwork> {
  assertValidNetworkName(options.name);
  const cidr = parseCidr(options.cidr);
  const netns = netnsName(options.name, options.netnsPrefix ?? (await dataDirNetnsPrefix(db)));
  requireRoot('vmfork network create');
  if (await getNetwork(db, options.name)) {
    throw new VmforkError('VMFORK_NETWORK_EXISTS', `a network named "${options.name}" already exists`, { details: { network: options.name } });
  }
  const actor = await actorFor('network-create');
  const now = new Date().toISOString();
  const row = {
    name: options.name,
    cidr: cidr.text,
    netns,
    bridge: BRIDGE_NAME,
    gateway: gatewayOf(cidr),
    owner_id: randomUUID(),
    vni: null,
    state: 'creating' as const,
    created_at: now,
    updated_at: now,
  };
  await insertNetwork(db, row, actor);
  try {
    await ensureNamespace(await instanceSpec(db, { ...row, ...NO_OWNER }, options.host ?? LOCAL_HOST_ID));
    await transition(db, 'networks', row.name, 'creating', 'ready', actor);
  } catch (err) {
    await deleteNetworkRow(db, row.name);
    throw err;
  }
  return { network: { ...row, state: 'ready', ...NO_OWNER }, normalizedFrom: cidr.normalized ? options.cidr : undefined };
}

/**
 * Makes a registered network usable on the host and returns its record: a no-op when its namespace is healthy, a
 * rebuild when the namespace vanished (host reboot). A network another process is still creating is built
 * alongside it (every step is idempotent); its creator moves it to ready. The fork engine calls this first.
 */
export async function ensureNetwork(db: Db, name: string, host: string = LOCAL_HOST_ID): Promise<NetworkRow> {
  const net = await requireNetwork(db, name);
  if (net.state === 'deleting') {
    throw new VmforkError('VMFORK_NETWORK_NOT_FOUND', `network "${name}" is being deleted`, { details: { network: name } });
  }
  requireRoot('setting up a vmfork network');
  await ensureNamespace(await instanceSpec(db, net, host));
  return net;
}

/** The network `vmfork fork` uses without `--network`: `default`, 10.231.0.0/24, created on first use. */
export async function ensureDefaultNetwork(db: Db, options: { netnsPrefix?: string } = {}, host: string = LOCAL_HOST_ID): Promise<NetworkRow> {
  if (!(await getNetwork(db, DEFAULT_NETWORK.name))) {
    try {
      return (await createNetwork(db, { ...DEFAULT_NETWORK, ...options, host })).network;
    } catch (err) {
      // Another process created it between our check and our insert: use theirs.
      if (!(isVmforkError(err) && err.code === 'VMFORK_NETWORK_EXISTS' && (await getNetwork(db, DEFAULT_NETWORK.name)))) throw err;
    }
  }
  return ensureNetwork(db, DEFAULT_NETWORK.name, host);
}

/**
 * Removes a network: refuses while any VM holds a lease (VMFORK_NETWORK_IN_USE, listing them), then deletes the
 * namespace and the record. The 'deleting' state, set under the write lock, stops new leases meanwhile; a removal
 * whose process died is finished by the next vmfork command (src/heal/). A namespace that turns out not to be ours
 * is left on the host.
 */
export async function deleteNetwork(db: Db, name: string): Promise<{ namespace: 'deleted' | 'absent' | 'foreign'; netns: string }> {
  requireRoot('vmfork network rm');
  const actor = await actorFor('network-rm');
  const net = await withWriteLock(db, async (conn) => {
    const row = await requireNetwork(conn, name);
    const leases = await listLeases(conn, name);
    if (leases.length) {
      const vms = leases.map((l) => l.vm_name);
      throw new VmforkError('VMFORK_NETWORK_IN_USE', `network "${name}" still has ${leases.length} lease(s): ${vms.join(', ')}`, {
        details: { network: name, vms },
      });
    }
    await transition(conn, 'networks', name, row.state, 'deleting', actor);
    return row;
  });
  return finishNetworkRemoval(db, net);
}

/** The host half of a removal, once the record is `deleting`: also how heal finishes one whose process died. */
export async function finishNetworkRemoval(db: Db, net: NetworkRow): Promise<{ namespace: 'deleted' | 'absent' | 'foreign'; netns: string }> {
  const namespace = await deleteNamespace(net.netns, net.owner_id, net.bridge, { emptyIsOurs: true });
  await deleteNetworkRow(db, net.name);
  return { namespace, netns: net.netns };
}

/**
 * Heal (src/heal/) of a network whose process died: a creation is finished (building a namespace is idempotent,
 * and VMs may already hold leases on it), a removal too.
 */
export async function healNetwork(db: Db, net: NetworkRow, actor: Actor): Promise<string> {
  if (net.state === 'creating') {
    await ensureNamespace(hostSpec(net));
    await transition(db, 'networks', net.name, 'creating', 'ready', actor);
    return `creation finished: namespace ${net.netns} built, network ready`;
  }
  const r = await finishNetworkRemoval(db, net);
  return `removal finished: namespace ${r.netns} ${r.namespace}, record removed`;
}
