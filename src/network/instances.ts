import { listNetworkRows, type Db } from '../store/index.js';
import { ip, listNamespaces } from './ip.js';
import { BRIDGE_NAME, instanceNetns } from './names.js';
import { inspectNamespace, ownerAlias } from './netns.js';
import { instanceSpec } from './networks.js';
import { syncVxlanPeers } from './vxlan.js';

export interface InstanceSync {
  /** Instances whose flood list changed: `<netns>: +peer -peer`. */
  peers: string[];
  /** Instances of networks removed from the fleet, deleted here. */
  removed: string[];
}

/**
 * An agent's host, at each heartbeat: its instances of the fleet's networks follow the fleet without a fork here.
 * Each one's VXLAN floods to the hosts registered now (one that joined is reached before this host forks again),
 * and an instance of a network that was removed (`vmfork network rm` runs on one host) is deleted once it holds no
 * tap. Only this host's instances are touched (`<netns>@<host>`), and only those whose bridge says vmfork made them.
 */
export async function syncHostInstances(db: Db, host: string): Promise<InstanceSync> {
  const out: InstanceSync = { peers: [], removed: [] };
  const mine = (await listNamespaces()).filter((n) => n.endsWith(`@${host}`));
  if (!mine.length) return out;
  const nets = await listNetworkRows(db);
  for (const netns of mine) {
    const net = nets.find((n) => instanceNetns(n.netns, host) === netns);
    const report = await inspectNamespace(netns, BRIDGE_NAME);
    if (net) {
      const spec = await instanceSpec(db, net, host);
      if (!report.vxlan || !spec.vxlan) continue;
      const r = await syncVxlanPeers(netns, spec.vxlan.peers);
      if (r.added.length || r.removed.length) out.peers.push(`${netns}: ${[...r.added.map((p) => `+${p}`), ...r.removed.map((p) => `-${p}`)].join(' ')}`);
    } else if (report.bridge.alias?.startsWith(ownerAlias('')) && report.taps.length === 0 && report.foreignLinks.length === 0) {
      await ip(['netns', 'del', netns]);
      out.removed.push(netns);
    }
  }
  return out;
}
