import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocate, broadcastOf, formatIpv4, gatewayOf, parseCidr, parseIpv4, vmIndex, vmRange } from '../../src/network/cidr.js';

test('a /24: gateway is .1, VMs get .2-.254, network and broadcast excluded', () => {
  const c = parseCidr('10.231.0.0/24');
  assert.equal(c.text, '10.231.0.0/24');
  assert.equal(c.normalized, false);
  assert.equal(gatewayOf(c), '10.231.0.1');
  assert.equal(formatIpv4(broadcastOf(c)), '10.231.0.255');
  const r = vmRange(c);
  assert.deepEqual([formatIpv4(r.first), formatIpv4(r.last), r.count], ['10.231.0.2', '10.231.0.254', 253]);
  assert.equal(allocate(c, []), '10.231.0.2');
});

test('a /30 has exactly one VM address', () => {
  const c = parseCidr('192.168.7.4/30');
  assert.equal(gatewayOf(c), '192.168.7.5');
  assert.equal(vmRange(c).count, 1);
  assert.equal(allocate(c, []), '192.168.7.6');
  assert.equal(allocate(c, ['192.168.7.6']), undefined, 'exhausted');
});

test('a /16 spans octets', () => {
  const c = parseCidr('172.20.0.0/16');
  assert.equal(vmRange(c).count, 65533);
  assert.equal(formatIpv4(vmRange(c).last), '172.20.255.254');
  assert.equal(vmIndex(c, '172.20.1.0'), 256);
});

test('allocate picks the lowest free address, filling holes first', () => {
  const c = parseCidr('10.0.0.0/29');
  assert.equal(allocate(c, ['10.0.0.2', '10.0.0.4']), '10.0.0.3');
  assert.equal(allocate(c, ['10.0.0.2', '10.0.0.3', '10.0.0.4']), '10.0.0.5');
  assert.equal(allocate(c, ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6']), undefined);
});

test('host bits are accepted and cleared, and say so', () => {
  const c = parseCidr(' 10.1.2.77/24 ');
  assert.equal(c.text, '10.1.2.0/24');
  assert.equal(c.normalized, true);
});

test('vmIndex: only leasable addresses have one', () => {
  const c = parseCidr('10.0.0.0/24');
  assert.equal(vmIndex(c, '10.0.0.2'), 2);
  assert.equal(vmIndex(c, '10.0.0.254'), 254);
  for (const ip of ['10.0.0.0', '10.0.0.1', '10.0.0.255', '10.0.1.2', 'x']) assert.equal(vmIndex(c, ip), undefined, ip);
});

test('invalid CIDRs are VMFORK_INVALID_CIDR', () => {
  for (const bad of ['10.0.0.0/33', '300.1.1.1/24', 'abc', '', '10.0.0.0', '10.0.0.0/', '10.0.0/24', '10.0.0.0/24/1', '10.0.0.0/8', '10.0.0.0/31',
    '10.0.0.0/32', '10.0.0.0/-1', '10.0.0.0/024', '010.0.0.0/24', '10.0.0.0 /24', '1.2.3.4.5/24', '8.8.8.0/24', '172.32.0.0/16', '192.169.0.0/24']) {
    assert.throws(() => parseCidr(bad), { code: 'VMFORK_INVALID_CIDR' }, bad);
  }
});

test('private ranges at their edges', () => {
  for (const ok of ['10.255.255.0/24', '172.16.0.0/16', '172.31.255.252/30', '192.168.0.0/16']) assert.equal(parseCidr(ok).text, ok);
});

test('parseIpv4 is strict', () => {
  assert.equal(parseIpv4('255.255.255.255'), 0xffffffff);
  assert.equal(parseIpv4('0.0.0.0'), 0);
  for (const bad of ['256.0.0.0', '1.2.3', '01.2.3.4', '1.2.3.-4', '1.2.3.4 ', 'a.b.c.d']) assert.equal(parseIpv4(bad), undefined, bad);
});
