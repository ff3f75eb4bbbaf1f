import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertValidNetworkName, IFNAME_MAX, isTapName, netnsName, netnsPrefix, tapName } from '../../src/network/names.js';
import { requireRoot } from '../../src/network/ip.js';

test('network names: RFC 1123 labels of at most 15 characters', () => {
  for (const ok of ['default', 'a', 'lab-1', 'x'.repeat(IFNAME_MAX)]) assert.doesNotThrow(() => assertValidNetworkName(ok), ok);
  for (const bad of ['', 'Lab', '-a', 'a-', 'a_b', 'a.b', 'x'.repeat(IFNAME_MAX + 1)]) {
    assert.throws(() => assertValidNetworkName(bad), { code: 'VMFORK_INVALID_NAME' }, bad);
  }
});

test('namespace names use the configurable prefix', () => {
  assert.equal(netnsName('default', netnsPrefix({})), 'vmfork-default');
  assert.equal(netnsName('default', netnsPrefix({ VMFORK_NETNS_PREFIX: 'vmft1-' })), 'vmft1-default');
  assert.throws(() => netnsPrefix({ VMFORK_NETNS_PREFIX: 'Bad/Prefix' }), { code: 'VMFORK_INVALID_ARGUMENT' });
});

test('tap names fit IFNAMSIZ for every address of a /16', () => {
  assert.equal(tapName(2), 'vt2');
  assert.ok(tapName(65534).length <= IFNAME_MAX);
  assert.ok(isTapName('vt65534'));
  for (const bad of ['vt', 'tap0', 'vt123456', 'vmf-br', 'eth0']) assert.ok(!isTapName(bad), bad);
});

test('requireRoot: VMFORK_NOT_ROOT with a clear message for anyone else', () => {
  assert.doesNotThrow(() => requireRoot('x', 0));
  assert.throws(() => requireRoot('vmfork network create', 1000), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'VMFORK_NOT_ROOT');
    assert.match(err.message, /vmfork network create .*run it as root/);
    return true;
  });
});
