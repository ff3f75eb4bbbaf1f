import { randomUUID } from 'node:crypto';
import { VmforkError } from '../errors.js';
import type { Db } from '../store/db.js';
import {
  deleteNetworkRow,
  getNetwork,
  insertNetwork,
  listLeases,
  requireNetwork,
  setNetworkState,
  withWriteLock,
} from '../store/networks-repo.js';
import type { NetworkRow } from '../store/schema.js';
import { gatewayOf, parseCidr } from './cidr.js';
import { requireRoot } from './ip.js';
import { assertValidNetworkName, BRIDGE_NAME, DEFAULT_NETWORK, netnsName, netnsPrefix } from './names.js';
import { deleteNamespace, ensureNamespace, type HostNetworkSpec } from './netns.js';

export interface CreateNetworkOptions {
  name: string;
  cidr: string;
  /** Namespace name prefix. @default VMFORK_NETNS_PREFIX or `vmfork-` */
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
 * inserted first (state 'creating') so its primary key serializes concurrent creates of one name. If the host setup
 * fails, the namespace is rolled back and the record removed: nothing is left behind.
 */
export async function createNetwork(db: Db, options: CreateNetworkOptions): Promise<CreatedNetwork> {
  assertValidNetworkName(options.name);
  const cidr = parseCidr(options.cidr);
  const netns = netnsName(options.name, options.netnsPrefix ?? netnsPrefix());
  requireRoot('vmfork network create');
  if (await getNetwork(db, options.name)) {
    throw new VmforkError('VMFORK_NETWORK_EXISTS', `a network named "${options.name}" already exists`, { details: { network: options.name } });
  }
  const row: NetworkRow = {
    name: options.name,
    cidr: cidr.text,
    netns,
    bridge: BRIDGE_NAME,
    gateway: gatewayOf(cidr),
    owner_id: randomUUID(),
    state: 'creating',
    created_at: new Date().toISOString(),
  };
  await insertNetwork(db, row);
  try {
    await ensureNamespace(hostSpec(row));
    await setNetworkState(db, row.name, 'ready');
  } catch (err) {
    await deleteNetworkRow(db, row.name);
    throw err;
  }
  return { network: { ...row, state: 'ready' }, normalizedFrom: cidr.normalized ? options.cidr : undefined };
}

/**
 * Makes a registered network usable on the host and returns its record: a no-op when its namespace is healthy,
 * a rebuild when the namespace vanished (host reboot), a finish when an earlier create was interrupted.
 * The fork engine calls this before creating taps.
 */
export async function ensureNetwork(db: Db, name: string): Promise<NetworkRow> {
  const net = await requireNetwork(db, name);
  if (net.state === 'deleting') {
    throw new VmforkError('VMFORK_NETWORK_NOT_FOUND', `network "${name}" is being deleted`, { details: { network: name } });
  }
  requireRoot('setting up a vmfork network');
  await ensureNamespace(hostSpec(net));
  if (net.state === 'creating') await setNetworkState(db, name, 'ready');
  return { ...net, state: 'ready' };
}

/** The network `vmfork fork` uses without `--network`: `default`, 10.231.0.0/24, created on first use. */
export async function ensureDefaultNetwork(db: Db, options: { netnsPrefix?: string } = {}): Promise<NetworkRow> {
  if (!(await getNetwork(db, DEFAULT_NETWORK.name))) {
    try {
      return (await createNetwork(db, { ...DEFAULT_NETWORK, ...options })).network;
    } catch (err) {
      // Another process created it between our check and our insert: use theirs.
      if (!(err instanceof VmforkError && err.code === 'VMFORK_NETWORK_EXISTS' && (await getNetwork(db, DEFAULT_NETWORK.name)))) throw err;
    }
  }
  return ensureNetwork(db, DEFAULT_NETWORK.name);
}

/**
 * Removes a network: refuses while any VM holds a lease (VMFORK_NETWORK_IN_USE, listing them), then deletes the
 * namespace and the record. The 'deleting' state, set under the write lock, stops new leases meanwhile; an
 * interrupted rm is finished by running it again. A namespace that turns out not to be ours is left on the host.
 */
export async function deleteNetwork(db: Db, name: string): Promise<{ namespace: 'deleted' | 'absent' | 'foreign'; netns: string }> {
  requireRoot('vmfork network rm');
  const net = await withWriteLock(db, async (conn) => {
    const row = await requireNetwork(conn, name);
    const leases = await listLeases(conn, name);
    if (leases.length) {
      const vms = leases.map((l) => l.vm_name);
      throw new VmforkError('VMFORK_NETWORK_IN_USE', `network "${name}" still has ${leases.length} lease(s): ${vms.join(', ')}`, {
        details: { network: name, vms },
      });
    }
    await setNetworkState(conn, name, 'deleting');
    return row;
  });
  const namespace = await deleteNamespace(net.netns, net.owner_id, net.bridge, { emptyIsOurs: true });
  await deleteNetworkRow(db, name);
  return { namespace, netns: net.netns };
}
