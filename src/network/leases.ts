import { VmforkError } from '../errors.js';
import {
  deleteLease,
  findLeaseByMac,
  getLease,
  getNetwork,
  getVm,
  insertLease,
  isUniqueViolation,
  listLeases,
  LOCAL_HOST_ID,
  requireNetwork,
  withWriteLock,
  type Db,
  type LeaseRow,
  type NetworkRow,
} from '../store/index.js';
import { assertValidName } from '../util/index.js';
import { allocate, parseCidr, vmIndex, vmRange } from './cidr.js';
import { isUnicastMac, normalizeMac, randomLocalMac } from './mac.js';
import { instanceNetns, tapName } from './names.js';

/** Everything a VM needs to be wired to its network: the guest's address and the tap QEMU opens. */
export interface Lease {
  network: string;
  vmName: string;
  ip: string;
  prefix: number;
  gateway: string;
  mac: string;
  /** Tap inside `netns`, on `bridge`; QEMU runs under `ip netns exec <netns>` with `-netdev tap,ifname=<tap>`. */
  tap: string;
  /** The namespace of the VM's host's instance of the network (instanceNetns). */
  netns: string;
  bridge: string;
  allocatedAt: string;
}

export interface AllocateLeaseOptions {
  network: string;
  vmName: string;
  /** A unicast MAC for the VM. @default a random locally administered one, unique among all leases */
  mac?: string | undefined;
  /** Source of random MACs (tests inject collisions). @default randomLocalMac */
  randomMac?: () => string;
  /** The host the VM runs on: its tap is in that host's instance of the network. @default the local host */
  host?: string;
}

const MAX_ATTEMPTS = 8;

function toLease(net: NetworkRow, row: LeaseRow, host: string): Lease {
  return {
    network: net.name,
    vmName: row.vm_name,
    ip: row.ip,
    prefix: parseCidr(net.cidr).prefix,
    gateway: net.gateway,
    mac: row.mac,
    tap: row.tap,
    netns: instanceNetns(net.netns, host),
    bridge: net.bridge,
    allocatedAt: row.allocated_at,
  };
}

function checkMac(mac: string | undefined): string | undefined {
  if (mac === undefined) return undefined;
  const m = normalizeMac(mac);
  if (m === undefined || !isUnicastMac(m)) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `"${mac}" is not a unicast MAC address like 02:12:34:56:78:9a`, { details: { mac } });
  }
  return m;
}

/**
 * Leases the lowest free address of `network` to `vmName`, with a MAC and a tap name. Idempotent: a VM that already
 * holds a lease on the network gets it back (a retried fork must not leak addresses). Race-free between processes:
 * the pick and the insert happen under SQLite's write lock, and the UNIQUE constraints are the last word (a
 * conflict retries). Throws VMFORK_NETWORK_EXHAUSTED when no address is left.
 *
 * Only records the lease: the caller creates the tap (createTap) and releases the lease when the VM goes away.
 */
export async function allocateLease(db: Db, options: AllocateLeaseOptions): Promise<Lease> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await withWriteLock(db, (conn) => allocateLeaseIn(conn, options));
    } catch (err) {
      // Only reachable if a writer bypassed the write lock or a random MAC collided between check and insert.
      if (isUniqueViolation(err) && attempt < MAX_ATTEMPTS) continue;
      throw err;
    }
  }
}

/**
 * allocateLease for a caller that already holds the write lock (`conn` from withWriteLock): a fork reserves its
 * children's names and addresses in one transaction, so two concurrent forks never plan the same ones.
 */
export async function allocateLeaseIn(conn: Db, options: AllocateLeaseOptions): Promise<Lease> {
  assertValidName(options.vmName, 'VM');
  const wantedMac = checkMac(options.mac);
  const randomMac = options.randomMac ?? (() => randomLocalMac());
  const net = await requireNetwork(conn, options.network);
  if (net.state === 'deleting') {
    throw new VmforkError('VMFORK_NETWORK_NOT_FOUND', `network "${net.name}" is being deleted`, { details: { network: net.name } });
  }
  const held = await getLease(conn, net.name, options.vmName);
  if (held) {
    if (wantedMac !== undefined && wantedMac !== held.mac) {
      throw new VmforkError('VMFORK_INVALID_ARGUMENT', `VM "${options.vmName}" already holds ${held.ip} on "${net.name}" with MAC ${held.mac}`, {
        details: { network: net.name, vm: options.vmName, mac: held.mac },
      });
    }
    return toLease(net, held, options.host ?? LOCAL_HOST_ID);
  }
  const cidr = parseCidr(net.cidr);
  const leases = await listLeases(conn, net.name);
  const ip = allocate(cidr, leases.map((l) => l.ip));
  if (ip === undefined) {
    const total = vmRange(cidr).count;
    throw new VmforkError('VMFORK_NETWORK_EXHAUSTED', `network "${net.name}" (${net.cidr}): 0 of ${total} addresses left`, {
      details: { network: net.name, cidr: net.cidr, free: 0, total },
    });
  }
  const mac = await pickMac(conn, wantedMac, randomMac);
  const row = await insertLease(conn, {
    network_name: net.name,
    ip,
    vm_name: options.vmName,
    mac,
    tap: tapName(vmIndex(cidr, ip) ?? 0),
    allocated_at: new Date().toISOString(),
  });
  return toLease(net, row, options.host ?? LOCAL_HOST_ID);
}

async function pickMac(conn: Db, wanted: string | undefined, randomMac: () => string): Promise<string> {
  if (wanted !== undefined) {
    const owner = await findLeaseByMac(conn, wanted);
    if (owner) {
      throw new VmforkError('VMFORK_INVALID_ARGUMENT', `MAC ${wanted} is already leased to VM "${owner.vm_name}" on "${owner.network_name}"`, {
        details: { mac: wanted, vm: owner.vm_name, network: owner.network_name },
      });
    }
    return wanted;
  }
  for (let i = 0; i < MAX_ATTEMPTS; i++) {
    const mac = randomMac();
    if (!(await findLeaseByMac(conn, mac))) return mac;
  }
  throw new VmforkError('VMFORK_INTERNAL', `no unused random MAC after ${MAX_ATTEMPTS} tries`);
}

/** Gives a VM's address back. Idempotent: releasing twice, or a VM that never had a lease, is not an error. */
export async function releaseLease(db: Db, network: string, vmName: string, host: string = LOCAL_HOST_ID): Promise<Lease | undefined> {
  // A missing network cannot hold leases (its record cannot be deleted while it does), so there is nothing to do.
  const net = await getNetwork(db, network);
  if (!net) return undefined;
  const row = await deleteLease(db, network, vmName);
  return row ? toLease(net, row, host) : undefined;
}

/** The host whose instance of the network a VM's tap is in: its record's (the local host before it has one). */
async function hostOfVm(db: Db, vmName: string): Promise<string> {
  return (await getVm(db, vmName))?.host_id ?? LOCAL_HOST_ID;
}

/** The lease a VM holds (on whichever network), or undefined. */
export async function leaseOfVm(db: Db, vmName: string): Promise<Lease | undefined> {
  const held = (await listLeases(db)).find((l) => l.vm_name === vmName);
  if (!held) return undefined;
  return toLease(await requireNetwork(db, held.network_name), held, await hostOfVm(db, vmName));
}

/** A network's leases, each with its VM's host's namespace. */
export async function leasesFor(db: Db, network: string): Promise<Lease[]> {
  const net = await requireNetwork(db, network);
  return Promise.all((await listLeases(db, network)).map(async (r) => toLease(net, r, await hostOfVm(db, r.vm_name))));
}

/** How many addresses of the network are still free for VMs (the gateway is never counted). */
export async function freeCount(db: Db, network: string): Promise<{ free: number; used: number; total: number }> {
  const net = await requireNetwork(db, network);
  const total = vmRange(parseCidr(net.cidr)).count;
  const used = (await listLeases(db, network)).length;
  return { free: total - used, used, total };
}
