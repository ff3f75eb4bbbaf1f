import { getLease, getNetwork, LOCAL_HOST_ID, type Db } from '../store/index.js';
import { allocateLease, releaseLease, type Lease } from './leases.js';
import { DEFAULT_NETWORK, instanceNetns } from './names.js';
import { ensureDefaultNetwork, ensureNetwork } from './networks.js';
import { ip } from './ip.js';
import { createTap, deleteTap, type TapOptions } from './tap.js';

export interface AttachOptions extends TapOptions {
  /** @default 'default' (created on first use) */
  network?: string | undefined;
  vmName: string;
  /** @default a random locally administered MAC */
  mac?: string | undefined;
  /** The host the VM runs on (this process's). @default the local host */
  host?: string;
}

/**
 * Makes the network usable on `host` (this process's: the local host, or an agent's) and returns its name. The
 * default network is created on first use.
 */
export async function ensureNetworkNamed(db: Db, network: string | undefined, host: string = LOCAL_HOST_ID): Promise<string> {
  const name = network ?? DEFAULT_NETWORK.name;
  if (name === DEFAULT_NETWORK.name) await ensureDefaultNetwork(db, {}, host);
  else await ensureNetwork(db, name, host);
  return name;
}

/**
 * Creates the tap of a lease taken earlier (a fork reserves its children's leases with their names). If the tap
 * cannot be made, nothing of it is left; the caller releases the lease with the rest of its rollback.
 */
export async function plugLease(lease: Lease, options: TapOptions = {}): Promise<void> {
  await createTap(lease, lease.tap, options);
  await forgetNeighbour(lease, lease.ip);
}

/**
 * An address comes back to a new VM with a new MAC, but the namespace's neighbour entry for it still names the
 * last holder's. Linux trusts a STALE entry, waits 5 s, probes the old MAC by unicast and only then asks by
 * broadcast: for ~8 s ping and ssh from the namespace (verify, `vmfork ssh`, readiness) reach nobody. So the entry
 * goes when the tap is made (a crash skipped the detach) and when the VM is detached.
 */
async function forgetNeighbour(net: { netns: string; bridge: string }, address: string): Promise<void> {
  await ip(['-n', net.netns, 'neigh', 'flush', 'to', address, 'dev', net.bridge], { allowFailure: true });
}

/**
 * The one call a VM needs before QEMU starts: the network is ensured on the host (rebuilt after a reboot), an
 * address, MAC and tap name are leased, and the tap is created on the bridge. If the tap cannot be made, the lease
 * is released again, so a failed attach leaves nothing behind.
 */
export async function attachVm(db: Db, options: AttachOptions): Promise<Lease> {
  const name = await ensureNetworkNamed(db, options.network, options.host);
  const lease = await allocateLease(db, { network: name, vmName: options.vmName, mac: options.mac, ...(options.host ? { host: options.host } : {}) });
  try {
    await plugLease(lease, options);
  } catch (err) {
    await releaseLease(db, name, options.vmName);
    throw err;
  }
  return lease;
}

/**
 * Undoes attachVm once QEMU has exited: deletes the tap, then releases the lease (in that order, so the address is
 * never handed out while the old tap still exists). Idempotent.
 */
export async function detachVm(db: Db, network: string, vmName: string, host: string = LOCAL_HOST_ID): Promise<void> {
  const row = await getNetwork(db, network);
  if (!row) return;
  const net = { netns: instanceNetns(row.netns, host), bridge: row.bridge };
  const lease = await getLease(db, network, vmName);
  if (lease) {
    await deleteTap(net, lease.tap);
    await forgetNeighbour(net, lease.ip);
  }
  await releaseLease(db, network, vmName);
}
