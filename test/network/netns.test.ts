import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bridgeMacOf, healthProblems, ownerAlias, type HostNetworkSpec, type NamespaceReport } from '../../src/network/netns.js';

const spec: HostNetworkSpec = { netns: 'vmfork-x', bridge: 'vmf-br', gateway: '10.231.0.1', prefix: 24, ownerId: 'me' };

function healthy(): NamespaceReport {
  return {
    netns: 'vmfork-x',
    present: true,
    loopbackUp: true,
    bridge: { present: true, up: true, alias: ownerAlias('me'), addresses: ['10.231.0.1/24'], mac: bridgeMacOf(spec) },
    taps: [{ name: 'vt2', up: true, onBridge: true }],
    foreignLinks: [],
    routesOut: [],
  };
}

test('healthProblems: none for what ensureNamespace builds', () => {
  assert.deepEqual(healthProblems(healthy(), spec), []);
});

test('healthProblems: names every deviation', () => {
  assert.deepEqual(healthProblems({ ...healthy(), present: false }, spec), ['namespace vmfork-x does not exist']);
  const r = healthy();
  r.loopbackUp = false;
  r.bridge = { present: true, up: false, alias: ownerAlias('other'), addresses: ['10.9.9.1/24'], mac: '02:00:00:00:00:01' };
  r.foreignLinks = ['veth0 (veth)'];
  r.routesOut = ['default via 10.231.0.254 dev vmf-br'];
  const p = healthProblems(r, spec);
  assert.equal(p.length, 7);
  assert.match(p.join('\n'), /bridge vmf-br has MAC 02:00:00:00:00:01, not its own/);
  assert.match(p.join('\n'), /loopback is down/);
  assert.match(p.join('\n'), /belongs to someone else/);
  assert.match(p.join('\n'), /gateway 10.231.0.1\/24 is not on vmf-br/);
  assert.match(p.join('\n'), /foreign links: veth0 \(veth\)/);
  assert.match(p.join('\n'), /routes out: default via/);
  assert.deepEqual(healthProblems({ ...healthy(), bridge: { present: false, up: false, alias: undefined, addresses: [] } }, spec), ['bridge vmf-br is missing']);
});

test('a bridge MAC is fixed per network, locally administered unicast, and differs between networks', () => {
  assert.equal(bridgeMacOf(spec), bridgeMacOf({ ...spec }));
  assert.notEqual(bridgeMacOf(spec), bridgeMacOf({ ...spec, netns: 'vmfork-y' }));
  assert.notEqual(bridgeMacOf(spec), bridgeMacOf({ ...spec, ownerId: 'other' }));
  assert.match(bridgeMacOf(spec), /^[0-9a-f][26ae](:[0-9a-f]{2}){5}$/);
});
