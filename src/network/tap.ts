import { VmforkError } from '../errors.js';
import { ip } from './ip.js';
import { isTapName } from './names.js';

/** Where a tap lives: a network's namespace and bridge (a NetworkRow or a Lease both fit). */
export interface TapHost {
  netns: string;
  bridge: string;
}

export interface TapOptions {
  /**
   * Create the tap with IFF_VNET_HDR. Off by default: QEMU sets the header mode it wants itself when it attaches
   * (TUNSETIFF), so only tools that open the tap without saying would see this. @default false
   */
  vnetHdr?: boolean;
  /** Create a multi-queue tap; QEMU must then open it with `queues=N`, or TUNSETIFF fails. @default false */
  multiQueue?: boolean;
}

function checkTapName(tap: string): void {
  if (!isTapName(tap)) throw new VmforkError('VMFORK_INVALID_ARGUMENT', `"${tap}" is not a vmfork tap name (vt<number>)`, { details: { tap } });
}

async function tapExists(net: TapHost, tap: string): Promise<boolean> {
  // `ip link show dev X` fails both for a missing link and a missing namespace: either way there is no tap.
  const r = await ip(['-n', net.netns, 'link', 'show', 'dev', tap], { allowFailure: true });
  return r.code === 0;
}

/**
 * Creates a persistent tap in the network's namespace, enslaved to its bridge and up, ready for QEMU's
 * `-netdev tap,ifname=<tap>,script=no,downscript=no` under `ip netns exec <netns>`.
 * A leftover tap of the same name (a VM that crashed before its cleanup) is replaced; one still held open by a
 * running QEMU cannot be deleted, so this fails with VMFORK_NETWORK_FAILED instead of stealing it.
 */
export async function createTap(net: TapHost, tap: string, options: TapOptions = {}): Promise<void> {
  checkTapName(tap);
  if (await tapExists(net, tap)) await ip(['-n', net.netns, 'tuntap', 'del', 'dev', tap, 'mode', 'tap']);
  const flags = [...(options.vnetHdr ? ['vnet_hdr'] : []), ...(options.multiQueue ? ['multi_queue'] : [])];
  await ip(['-n', net.netns, 'tuntap', 'add', 'dev', tap, 'mode', 'tap', ...flags]);
  try {
    await ip(['-n', net.netns, 'link', 'set', 'dev', tap, 'master', net.bridge]);
    await ip(['-n', net.netns, 'link', 'set', 'dev', tap, 'up']);
  } catch (err) {
    await ip(['-n', net.netns, 'tuntap', 'del', 'dev', tap, 'mode', 'tap'], { allowFailure: true });
    throw err;
  }
}

/** Deletes a tap; false when it (or its namespace) was already gone, so cleanup paths can call it blindly. */
export async function deleteTap(net: TapHost, tap: string): Promise<boolean> {
  checkTapName(tap);
  if (!(await tapExists(net, tap))) return false;
  await ip(['-n', net.netns, 'tuntap', 'del', 'dev', tap, 'mode', 'tap']);
  return true;
}
