import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocateLease } from '../../src/network/leases.js';
import { instanceNetns, baseNetnsOf } from '../../src/network/names.js';
import { bridgeMacOf, healthProblems, ownerAlias, type HostNetworkSpec, type NamespaceReport } from '../../src/network/netns.js';
import { instanceSpec } from '../../src/network/networks.js';
import { listenAddress } from '../../src/network/vxlan.js';
import { upsertHost } from '../../src/store/datastores-repo.js';
import { networkVni, requireNetwork } from '../../src/store/networks-repo.js';
import type { Db } from '../../src/store/db.js';
import { addNetworkRecord } from './lease-fixtures.js';
import { openTestStore } from '../helpers/store.js';

async function addAgentHost(db: Db, id: string, listen: string): Promise<void> {
  await upsertHost(db, id, id);
  await db.updateTable('hosts').set({ agent_listen: listen }).where('id', '=', id).execute();
}

test("a host's instance of a network: its own namespace name on an agent's host, the network's own on the local host", () => {
  assert.equal(instanceNetns('vmf-ab12cd-span', 'local'), 'vmf-ab12cd-span');
  assert.equal(instanceNetns('vmf-ab12cd-span', 'h2'), 'vmf-ab12cd-span@h2');
  // a network `a-b` on host `c` and a network `a` on host `b-c` must not meet
  assert.notEqual(instanceNetns('p-a-b', 'c'), instanceNetns('p-a', 'b-c'));
  assert.equal(baseNetnsOf('vmf-ab12cd-span@h2'), 'vmf-ab12cd-span');
  assert.equal(baseNetnsOf('vmf-ab12cd-span'), 'vmf-ab12cd-span');
});

test("an agent's recorded URL gives the tunnel's address", () => {
  assert.equal(listenAddress('http://10.250.0.10:8471'), '10.250.0.10');
  assert.equal(listenAddress('http://[fd00::5]:8471'), 'fd00::5');
  assert.equal(listenAddress('10.0.0.7:8471'), '10.0.0.7');
});

test("VNIs: drawn once per network, from 4096 up, distinct between networks even when drawn at once, kept", async () => {
  const db = await openTestStore();
  await addNetworkRecord(db, 'a', '10.231.1.0/24');
  await addNetworkRecord(db, 'b', '10.231.2.0/24');
  assert.equal((await requireNetwork(db, 'a')).vni, null, 'none until a host needs it');
  const [a1, b1, a2] = await Promise.all([networkVni(db, 'a'), networkVni(db, 'b'), networkVni(db, 'a')]);
  assert.equal(a1, a2);
  assert.notEqual(a1, b1);
  assert.deepEqual([a1, b1].sort(), [4096, 4097]);
  assert.equal(await networkVni(db, 'b'), b1);
  await db.destroy();
});

test("an agent's host instance: its namespace, the network's bridge MAC and gateway, a VXLAN from its address to every other agent's", async () => {
  const db = await openTestStore();
  await addNetworkRecord(db, 'span', '10.77.0.0/24');
  await addAgentHost(db, 'h1', 'http://10.250.0.10:8471');
  await addAgentHost(db, 'h2', 'http://10.250.0.11:8471');
  await addAgentHost(db, 'h3', 'http://10.250.0.12:8471');
  const net = await requireNetwork(db, 'span');
  const local = await instanceSpec(db, net, 'local');
  assert.equal(local.netns, 'vmfork-unit-span');
  assert.equal(local.vxlan, undefined, 'the local host has no agent: the network stays on it');
  const h2 = await instanceSpec(db, net, 'h2');
  assert.equal(h2.netns, 'vmfork-unit-span@h2');
  assert.equal(h2.gateway, local.gateway);
  assert.equal(bridgeMacOf(h2), bridgeMacOf(local), 'one gateway, address and MAC, on every host');
  assert.equal(h2.vxlan?.local, '10.250.0.11');
  assert.deepEqual(h2.vxlan?.peers.sort(), ['10.250.0.10', '10.250.0.12']);
  assert.equal(h2.vxlan?.vni, (await instanceSpec(db, net, 'h1')).vxlan?.vni);
  await assert.rejects(instanceSpec(db, net, 'h9'), { code: 'VMFORK_HOST_NOT_FOUND' });
  // leases are drawn once for the fleet; each carries the namespace of its VM's host
  const onH2 = await allocateLease(db, { network: 'span', vmName: 'c2', host: 'h2' });
  const onH1 = await allocateLease(db, { network: 'span', vmName: 'c1', host: 'h1' });
  assert.equal(onH2.netns, 'vmfork-unit-span@h2');
  assert.equal(onH1.netns, 'vmfork-unit-span@h1');
  assert.notEqual(onH1.ip, onH2.ip);
  assert.notEqual(onH1.mac, onH2.mac);
  assert.notEqual(onH1.tap, onH2.tap);
  await db.destroy();
});

test('healthProblems: an instance without its VXLAN, with a wrong one, or a local network with one', () => {
  const vxlan = { vni: 4096, local: '10.250.0.11', peers: ['10.250.0.10'] };
  const spec: HostNetworkSpec = { netns: 'n@h2', baseNetns: 'n', bridge: 'vmf-br', gateway: '10.77.0.1', prefix: 24, ownerId: 'me', vxlan };
  const report = (v?: NamespaceReport['vxlan']): NamespaceReport => ({
    netns: 'n@h2',
    present: true,
    loopbackUp: true,
    bridge: { present: true, up: true, alias: ownerAlias('me'), addresses: ['10.77.0.1/24'], mac: bridgeMacOf(spec) },
    taps: [],
    ...(v ? { vxlan: v } : {}),
    foreignLinks: [],
    routesOut: [],
  });
  const good = { up: true, onBridge: true, alias: ownerAlias('me'), vni: 4096, local: '10.250.0.11' };
  assert.deepEqual(healthProblems(report(good), spec), []);
  assert.deepEqual(healthProblems(report(), spec), ['vmf-vx is missing']);
  assert.match(healthProblems(report({ ...good, vni: 9 }), spec).join(), /VNI 9 from 10.250.0.11, not VNI 4096/);
  assert.match(healthProblems(report({ ...good, onBridge: false, up: false }), spec).join(), /not on the bridge.*down/);
  const { vxlan: _v, baseNetns: _b, ...localSpec } = spec;
  assert.match(healthProblems({ ...report(good), bridge: { ...report(good).bridge, mac: bridgeMacOf(localSpec) } }, localSpec).join(), /joins this host-local network to other hosts/);
});
