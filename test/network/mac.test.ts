import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLocallyAdministeredUnicast, isUnicastMac, normalizeMac, randomLocalMac } from '../../src/network/mac.js';

test('randomLocalMac: locally administered unicast, well-formed, varied', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 500; i++) {
    const mac = randomLocalMac();
    assert.match(mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    assert.ok(isLocallyAdministeredUnicast(mac), mac);
    seen.add(mac);
  }
  assert.equal(seen.size, 500);
});

test('randomLocalMac forces the U/L bit on and the I/G bit off whatever the random bytes', () => {
  assert.equal(randomLocalMac(() => new Uint8Array([0xff, 1, 2, 3, 4, 5])), 'fe:01:02:03:04:05');
  assert.equal(randomLocalMac(() => new Uint8Array([0x00, 0, 0, 0, 0, 0])), '02:00:00:00:00:00');
});

test('isLocallyAdministeredUnicast', () => {
  assert.ok(isLocallyAdministeredUnicast('02:00:00:00:00:01'));
  assert.ok(isLocallyAdministeredUnicast('0A:11:22:33:44:55'));
  // 0x52 = 0101 0010: U/L bit set. QEMU's default prefix is locally administered (not an IEEE-assigned OUI).
  assert.ok(isLocallyAdministeredUnicast('52:54:00:12:34:56'));
  assert.ok(!isLocallyAdministeredUnicast('00:16:3e:00:00:01'), "Xen's IEEE OUI is universally administered");
  assert.ok(!isLocallyAdministeredUnicast('03:00:00:00:00:01'), 'multicast');
  assert.ok(!isLocallyAdministeredUnicast('00:11:22:33:44:55'));
  assert.ok(!isLocallyAdministeredUnicast('02:00:00:00:00'));
});

test('isUnicastMac and normalizeMac', () => {
  assert.ok(isUnicastMac('52:54:00:12:34:56'));
  assert.ok(!isUnicastMac('01:00:5e:00:00:01'));
  assert.ok(!isUnicastMac('ff:ff:ff:ff:ff:ff'));
  assert.ok(!isUnicastMac('00:00:00:00:00:00'));
  assert.equal(normalizeMac(' 0A:BB:cc:dd:ee:FF '), '0a:bb:cc:dd:ee:ff');
  for (const bad of ['0a-bb-cc-dd-ee-ff', '0abbccddeeff', 'gg:00:00:00:00:00', '0a:bb:cc:dd:ee']) assert.equal(normalizeMac(bad), undefined, bad);
});
