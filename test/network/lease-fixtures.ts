import type { Db } from '../../src/store/db.js';
import { insertNetwork } from '../../src/store/networks-repo.js';
import { gatewayOf, parseCidr } from '../../src/network/cidr.js';
import { testActor } from '../helpers/actor.js';

/** Registers a network record only (no namespace): lease bookkeeping never touches the host. */
export async function addNetworkRecord(db: Db, name: string, cidr: string): Promise<void> {
  const c = parseCidr(cidr);
  await insertNetwork(db, {
    name,
    cidr: c.text,
    netns: `vmfork-unit-${name}`,
    bridge: 'vmf-br',
    gateway: gatewayOf(c),
    owner_id: 'unit-test',
    state: 'ready',
    created_at: new Date().toISOString(),
    updated_at: new Date().toISOString(),
  }, await testActor('network-create'));
}
