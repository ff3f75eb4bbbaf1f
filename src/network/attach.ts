import type { Db } from '../store/db.js';
import { getLease, getNetwork } from '../store/networks-repo.js';
import { allocateLease, releaseLease, type Lease } from './leases.js';
import { DEFAULT_NETWORK } from './names.js';
import { ensureDefaultNetwork, ensureNetwork } from './networks.js';
import { createTap, deleteTap, type TapOptions } from './tap.js';

export interface AttachOptions extends TapOptions {
  /** @default 'default' (created on first use) */
  network?: string | undefined;
  vmName: string;
  /** @default a random locally administered MAC */
  mac?: string | undefined;
}

/**
 * The one call a VM needs before QEMU starts: the network is ensured on the host (rebuilt after a reboot), an
 * address, MAC and tap name are leased, and the tap is created on the bridge. If the tap cannot be made, the lease
 * is released again, so a failed attach leaves nothing behind.
 */
export async function attachVm(db: Db, options: AttachOptions): Promise<Lease> {
  const name = options.network ?? DEFAULT_NETWORK.name;
  if (name === DEFAULT_NETWORK.name) await ensureDefaultNetwork(db);
  else await ensureNetwork(db, name);
  const lease = await allocateLease(db, { network: name, vmName: options.vmName, mac: options.mac });
  try {
    await createTap(lease, lease.tap, options);
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
export async function detachVm(db: Db, network: string, vmName: string): Promise<void> {
  const net = await getNetwork(db, network);
  if (!net) return;
  const lease = await getLease(db, network, vmName);
  if (lease) await deleteTap(net, lease.tap);
  await releaseLease(db, network, vmName);
}
