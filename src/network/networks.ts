import { randomUUID } from 'node:crypto';
import { VmforkError, isVmforkError } from '../errors.js';
import { actorFor } from '../host/index.js';
import type { Actor } from '../state/index.js';
import {
  deleteNetworkRow,
  getNetwork,
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
import { assertValidNetworkName, BRIDGE_NAME, DEFAULT_NETWORK, dataDirNetnsPrefix, netnsName } from './names.js';
import { deleteNamespace, ensureNamespace, type HostNetworkSpec } from './netns.js';

export interface CreateNetworkOptions {
  name: string;
  cidr: string;
  /** Namespace name prefix. @default VMFORK_NETNS_PREFIX, else this data dir's own prefix (see names.ts) */
  netnsPrefix?: string;
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
    state: 'creating' as const,
    created_at: now,
    updated_at: now,
  };
  await insertNetwork(db, row, actor);
  try {
    await ensureNamespace(hostSpec({ ...row, ...NO_OWNER }));
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
export async function ensureNetwork(db: Db, name: string): Promise<NetworkRow> {
  const net = await requireNetwork(db, name);
  if (net.state === 'deleting') {
    throw new VmforkError('VMFORK_NETWORK_NOT_FOUND', `network "${name}" is being deleted`, { details: { network: name } });
  }
  requireRoot('setting up a vmfork network');
  await ensureNamespace(hostSpec(net));
  return net;
}

/** The network `vmfork fork` uses without `--network`: `default`, 10.231.0.0/24, created on first use. */
export async function ensureDefaultNetwork(db: Db, options: { netnsPrefix?: string } = {}): Promise<NetworkRow> {
  if (!(await getNetwork(db, DEFAULT_NETWORK.name))) {
    try {
      return (await createNetwork(db, { ...DEFAULT_NETWORK, ...options })).network;
    } catch (err) {
      // Another process created it between our check and our insert: use theirs.
      if (!(isVmforkError(err) && err.code === 'VMFORK_NETWORK_EXISTS' && (await getNetwork(db, DEFAULT_NETWORK.name)))) throw err;
    }
  }
  return ensureNetwork(db, DEFAULT_NETWORK.name);
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
