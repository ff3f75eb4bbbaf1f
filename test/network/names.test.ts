import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertValidNetworkName, dataDirNetnsPrefix, IFNAME_MAX, isTapName, netnsName, netnsPrefixOverride, tapName } from '../../src/network/names.js';
import { requireRoot } from '../../src/network/ip.js';
import { openTestStore } from '../helpers/store.js';

test('network names: RFC 1123 labels of at most 15 characters', () => {
  for (const ok of ['default', 'a', 'lab-1', 'x'.repeat(IFNAME_MAX)]) assert.doesNotThrow(() => assertValidNetworkName(ok), ok);
  for (const bad of ['', 'Lab', '-a', 'a-', 'a_b', 'a.b', 'x'.repeat(IFNAME_MAX + 1)]) {
    assert.throws(() => assertValidNetworkName(bad), { code: 'VMFORK_INVALID_NAME' }, bad);
  }
});

test('namespace names: VMFORK_NETNS_PREFIX when set, else a prefix of the data dir own, drawn once and kept', async () => {
  assert.equal(netnsName('default', 'vmft1-'), 'vmft1-default');
  assert.equal(netnsPrefixOverride({}), undefined);
  assert.equal(netnsPrefixOverride({ VMFORK_NETNS_PREFIX: 'vmft1-' }), 'vmft1-');
  assert.throws(() => netnsPrefixOverride({ VMFORK_NETNS_PREFIX: 'Bad/Prefix' }), { code: 'VMFORK_INVALID_ARGUMENT' });
  const [a, b] = [await openTestStore(), await openTestStore()];
  try {
    const first = await dataDirNetnsPrefix(a, {});
    assert.match(first, /^vmf-[0-9a-f]{6}-$/);
    assert.equal(await dataDirNetnsPrefix(a, {}), first, 'the same data dir keeps its prefix');
    assert.notEqual(await dataDirNetnsPrefix(b, {}), first, 'another data dir draws its own');
    assert.equal(await dataDirNetnsPrefix(a, { VMFORK_NETNS_PREFIX: 'x-' }), 'x-', 'the override wins');
  } finally {
    await a.destroy();
    await b.destroy();
  }
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
