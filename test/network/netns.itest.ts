import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type Db } from '../../src/store/db.js';
import { getNetwork } from '../../src/store/networks-repo.js';
import { attachVm, detachVm } from '../../src/network/attach.js';
import { execInNetns, ip, ipJson, listNamespaces } from '../../src/network/ip.js';
import { leasesFor } from '../../src/network/leases.js';
import { createNetwork, deleteNetwork, ensureDefaultNetwork, ensureNetwork } from '../../src/network/networks.js';
import { bridgeMacOf, ensureNamespace, inspectNamespace } from '../../src/network/netns.js';
import { createTap, deleteTap } from '../../src/network/tap.js';
import { isRoot, removeNamespacesWithPrefix, uniqueNetnsPrefix } from './itest-helpers.js';

const skip = isRoot() ? false : 'needs root (network namespaces)';
const prefix = uniqueNetnsPrefix();
const dir = mkdtempSync(join(tmpdir(), 'vmfork-netns-'));
let db: Db;

before(async () => {
  db = await openStore(join(dir, 'vmfork.db'));
});

after(async () => {
  await db?.destroy();
  const removed = await removeNamespacesWithPrefix(prefix);
  rmSync(dir, { recursive: true, force: true });
  assert.deepEqual((await listNamespaces()).filter((n) => n.startsWith(prefix)), [], `left behind: ${removed.join(', ')}`);
});

interface Link {
  ifname: string;
  master?: string;
  flags: string[];
  linkinfo?: { info_kind?: string; info_data?: { type?: string; vnet_hdr?: boolean; multi_queue?: boolean; persist?: boolean } };
}

test('a network: namespace, bridge with the gateway, two taps on it, ping inside, then nothing left', { skip }, async () => {
  const { network: net } = await createNetwork(db, { name: 'it1', cidr: '10.231.200.0/24', netnsPrefix: prefix });
  const ns = net.netns;
  assert.equal(ns, `${prefix}it1`);
  assert.ok((await listNamespaces()).includes(ns));

  const addrs = await ipJson<{ addr_info: { family: string; local: string; prefixlen: number }[] }>(['-n', ns, 'addr', 'show', 'dev', 'vmf-br']);
  assert.ok(addrs[0]?.addr_info.some((a) => a.family === 'inet' && a.local === '10.231.200.1' && a.prefixlen === 24), 'gateway on the bridge');

  // No way out: only lo and the bridge, and no route but the bridge's own subnet.
  const before = await inspectNamespace(ns, 'vmf-br');
  assert.deepEqual([before.foreignLinks, before.routesOut], [[], []]);
  const routes = await ipJson<{ dst: string; dev: string }>(['-n', ns, '-4', 'route', 'show']);
  assert.deepEqual(routes.map((r) => `${r.dst} ${r.dev}`), ['10.231.200.0/24 vmf-br']);

  const a = await attachVm(db, { network: 'it1', vmName: 'child-a' });
  const b = await attachVm(db, { network: 'it1', vmName: 'child-b' });
  assert.deepEqual([a.ip, a.tap, b.ip, b.tap], ['10.231.200.2', 'vt2', '10.231.200.3', 'vt3']);
  const links = await ipJson<Link>(['-n', ns, '-d', 'link', 'show']);
  for (const tap of ['vt2', 'vt3']) {
    const l = links.find((x) => x.ifname === tap);
    assert.equal(l?.master, 'vmf-br', `${tap} on the bridge`);
    assert.ok(l?.flags.includes('UP'), `${tap} up`);
    assert.deepEqual(l?.linkinfo?.info_data, { ...l?.linkinfo?.info_data, type: 'tap', vnet_hdr: false, multi_queue: false, persist: true });
  }
  assert.equal((await ip(['link', 'show', 'dev', 'vt2'], { allowFailure: true })).code, 1, 'the taps are not in the host namespace');

  const ping = await execInNetns(ns, 'ping', ['-c1', '-W1', a.gateway]);
  assert.match(ping.stdout, /1 received/);

  await assert.rejects(deleteNetwork(db, 'it1'), (err: Error & { code?: string }) => err.code === 'VMFORK_NETWORK_IN_USE' && /child-a, child-b/.test(err.message));
  await detachVm(db, 'it1', 'child-a');
  await detachVm(db, 'it1', 'child-a');
  await detachVm(db, 'it1', 'child-b');
  assert.deepEqual(await leasesFor(db, 'it1'), []);
  assert.deepEqual((await inspectNamespace(ns, 'vmf-br')).taps, []);
  assert.deepEqual(await deleteNetwork(db, 'it1'), { namespace: 'deleted', netns: ns });
  assert.ok(!(await listNamespaces()).includes(ns));
  assert.equal(await getNetwork(db, 'it1'), undefined);
});

test('ensure: a no-op when healthy; rebuilds a namespace lost in a reboot; repairs a downed bridge', { skip }, async () => {
  const { network: net } = await createNetwork(db, { name: 'it2', cidr: '192.168.231.0/28', netnsPrefix: prefix });
  const spec = { netns: net.netns, bridge: net.bridge, gateway: net.gateway, prefix: 28, ownerId: net.owner_id };
  assert.deepEqual(await ensureNamespace(spec), { created: false, repaired: [] });
  await ip(['netns', 'del', net.netns]);
  await ensureNetwork(db, 'it2');
  assert.ok((await listNamespaces()).includes(net.netns), 'recreated');
  await ip(['-n', net.netns, 'link', 'set', 'vmf-br', 'down']);
  assert.deepEqual(await ensureNamespace(spec), { created: false, repaired: ['bridge up'] });
  // the bridge keeps its own MAC whatever taps come and go; one made before it was pinned gets it pinned
  assert.equal((await inspectNamespace(net.netns, 'vmf-br')).bridge.mac, bridgeMacOf(spec));
  await ip(['-n', net.netns, 'link', 'set', 'vmf-br', 'address', '02:00:00:00:00:01']);
  assert.deepEqual(await ensureNamespace(spec), { created: false, repaired: ['bridge address'] });
  assert.equal((await inspectNamespace(net.netns, 'vmf-br')).bridge.mac, bridgeMacOf(spec));
  await execInNetns(net.netns, 'ping', ['-c1', '-W1', net.gateway]);
  await deleteNetwork(db, 'it2');
});

test('createTap replaces a leftover tap; deleteTap is idempotent', { skip }, async () => {
  const { network: net } = await createNetwork(db, { name: 'it3', cidr: '10.231.201.0/30', netnsPrefix: prefix });
  await createTap(net, 'vt2');
  await ip(['-n', net.netns, 'link', 'set', 'dev', 'vt2', 'nomaster']);
  await createTap(net, 'vt2');
  assert.deepEqual((await inspectNamespace(net.netns, net.bridge)).taps, [{ name: 'vt2', up: true, onBridge: true }]);
  assert.equal(await deleteTap(net, 'vt2'), true);
  assert.equal(await deleteTap(net, 'vt2'), false);
  await assert.rejects(createTap(net, 'eth0'), { code: 'VMFORK_INVALID_ARGUMENT' });
  await deleteNetwork(db, 'it3');
});

test('an address handed out again carries no neighbour entry naming its last holder', { skip }, async () => {
  const { network: net } = await createNetwork(db, { name: 'it4', cidr: '10.231.202.0/29', netnsPrefix: prefix });
  const neighbours = async (): Promise<string[]> =>
    (await ipJson<{ dst: string; lladdr?: string }>(['-n', net.netns, 'neigh', 'show', 'dev', net.bridge])).map((n) => `${n.dst} ${n.lladdr ?? ''}`);
  const a = await attachVm(db, { network: 'it4', vmName: 'first' });
  // what the namespace learns while a VM talks to it, then what a crash (no detach) leaves behind
  await ip(['-n', net.netns, 'neigh', 'replace', a.ip, 'lladdr', a.mac, 'dev', net.bridge, 'nud', 'stale']);
  await ip(['-n', net.netns, 'neigh', 'replace', '10.231.202.6', 'lladdr', '02:00:00:00:00:06', 'dev', net.bridge, 'nud', 'stale']);
  await detachVm(db, 'it4', 'first');
  assert.ok(!(await neighbours()).some((n) => n.startsWith(`${a.ip} `)), 'detach forgets its address');
  await ip(['-n', net.netns, 'neigh', 'replace', a.ip, 'lladdr', a.mac, 'dev', net.bridge, 'nud', 'stale']);
  const b = await attachVm(db, { network: 'it4', vmName: 'second' });
  assert.equal(b.ip, a.ip);
  assert.notEqual(b.mac, a.mac);
  // (only its own address is asserted here: the kernel may flush the others too as the bridge gains a port)
  assert.ok(!(await neighbours()).some((n) => n.startsWith(`${a.ip} `)), 'plugging the new tap forgets the last holder');
  await detachVm(db, 'it4', 'second');
  await deleteNetwork(db, 'it4');
});

test('a failure halfway through setup rolls the namespace back', { skip }, async () => {
  const netns = `${prefix}half`;
  // 10.231.0.300 passes no parser: `ip addr add` fails after the namespace and bridge were made.
  await assert.rejects(ensureNamespace({ netns, bridge: 'vmf-br', gateway: '10.231.0.300', prefix: 24, ownerId: 'x' }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'VMFORK_NETWORK_FAILED');
    assert.match(err.message, /addr add 10\.231\.0\.300/, 'failed at the address, after the namespace and bridge existed');
    return true;
  });
  assert.ok(!(await listNamespaces()).includes(netns));
});

test('namespaces vmfork did not make are refused and left untouched, with no record left', { skip }, async () => {
  const foreign = `${prefix}foreign`;
  await ip(['netns', 'add', foreign]);
  // Both ends of the pair stay inside the test's own namespace: a stand-in for "a way out", touching nothing else.
  await ip(['-n', foreign, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1']);
  await assert.rejects(createNetwork(db, { name: 'foreign', cidr: '10.231.202.0/24', netnsPrefix: prefix }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'VMFORK_NETWORK_FAILED');
    assert.match(err.message, /foreign links: v0@v1 \(veth\)|foreign links: v[01].*veth/);
    return true;
  });
  assert.equal(await getNetwork(db, 'foreign'), undefined);
  const left = await inspectNamespace(foreign, 'vmf-br');
  assert.deepEqual([left.bridge.present, left.foreignLinks.length], [false, 2], 'untouched');

  const other = `${prefix}other`;
  await ip(['netns', 'add', other]);
  await ip(['-n', other, 'link', 'add', 'vmf-br', 'type', 'bridge']);
  await ip(['-n', other, 'link', 'set', 'vmf-br', 'alias', 'vmfork:someone-else']);
  await assert.rejects(createNetwork(db, { name: 'other', cidr: '10.231.203.0/24', netnsPrefix: prefix }), { code: 'VMFORK_NETWORK_EXISTS' });
  assert.equal(await getNetwork(db, 'other'), undefined);
  assert.ok((await listNamespaces()).includes(other), 'not deleted');
});

test('validation happens before the host is touched', { skip }, async () => {
  const beforeList = await listNamespaces();
  await assert.rejects(createNetwork(db, { name: 'bad', cidr: '10.0.0.0/33', netnsPrefix: prefix }), { code: 'VMFORK_INVALID_CIDR' });
  await assert.rejects(createNetwork(db, { name: 'Bad_Name', cidr: '10.0.0.0/24', netnsPrefix: prefix }), { code: 'VMFORK_INVALID_NAME' });
  await assert.rejects(createNetwork(db, { name: 'way-too-long-name', cidr: '10.0.0.0/24', netnsPrefix: prefix }), { code: 'VMFORK_INVALID_NAME' });
  assert.deepEqual(await listNamespaces(), beforeList);
});

test('ensureDefaultNetwork: created once even when called concurrently, then a no-op', { skip }, async () => {
  const nets = await Promise.all([1, 2, 3].map(() => ensureDefaultNetwork(db, { netnsPrefix: prefix })));
  assert.deepEqual(new Set(nets.map((n) => `${n.name} ${n.cidr} ${n.netns} ${n.gateway} ${n.owner_id}`)).size, 1);
  const [net] = nets;
  assert.deepEqual([net?.name, net?.cidr, net?.gateway, net?.state], ['default', '10.231.0.0/24', '10.231.0.1', 'ready']);
  assert.equal((await ensureDefaultNetwork(db, { netnsPrefix: prefix })).owner_id, net?.owner_id);
  const lease = await attachVm(db, { vmName: 'dflt' });
  assert.deepEqual([lease.network, lease.ip, lease.netns], ['default', '10.231.0.2', `${prefix}default`]);
  await detachVm(db, 'default', 'dflt');
  await deleteNetwork(db, 'default');
});
