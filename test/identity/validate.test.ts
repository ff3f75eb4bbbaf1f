import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VmforkError, type ErrorCode } from '../../src/errors.js';
import { newMachineId, validateIdentity } from '../../src/identity/validate.js';
import type { ChildIdentity } from '../../src/identity/types.js';

const GOOD: ChildIdentity = {
  hostname: 'web-1',
  mac: '02:AB:cd:ef:01:23',
  machineId: '0123456789abcdef0123456789abcdef',
  ipv4: { address: '10.231.0.5', prefix: 24, gateway: '10.231.0.1' },
};

function rejects(identity: unknown, code: ErrorCode, field?: RegExp): void {
  assert.throws(
    () => validateIdentity(identity as ChildIdentity),
    (err: unknown) => {
      assert.ok(err instanceof VmforkError);
      assert.equal(err.code, code, err.message);
      if (field) assert.match(err.message, field);
      return true;
    },
  );
}

test('a valid identity is normalized: lower-case MAC, default interface eth0', () => {
  assert.deepEqual(validateIdentity(GOOD), { ...GOOD, mac: '02:ab:cd:ef:01:23', interface: 'eth0' });
  assert.equal(validateIdentity({ ...GOOD, interface: 'ens3' }).interface, 'ens3');
  assert.equal(validateIdentity({ ...GOOD, ipv4: undefined }).ipv4, undefined);
  assert.equal(validateIdentity({ ...GOOD, hostname: 'web-1.pool.example' }).hostname, 'web-1.pool.example');
});

test('hostnames that could inject shell, or are not RFC 1123, are rejected', () => {
  for (const hostname of ['a;reboot', 'a$(reboot)', "a'b", 'a b', 'a\nb', '`id`', '-lead', 'trail-', 'UPPER', '', 'a..b', '.a', `${'a'.repeat(60)}.${'b'.repeat(10)}`, 'x'.repeat(64)]) {
    rejects({ ...GOOD, hostname }, 'VMFORK_INVALID_NAME', /hostname/);
  }
  rejects({ ...GOOD, hostname: 42 }, 'VMFORK_INVALID_NAME');
});

test('MACs must be locally administered unicast', () => {
  for (const mac of ['52:54:00:12:34:5', '00:16:3e:00:00:01', '03:00:00:00:00:01', 'ff:ff:ff:ff:ff:ff', '02:ab:cd:ef:01:23;', '02-ab-cd-ef-01-23']) {
    rejects({ ...GOOD, mac }, 'VMFORK_INVALID_ARGUMENT', /mac/);
  }
});

test('machine ids must be 32 lower-case hex digits, not all zero', () => {
  for (const machineId of ['0123456789ABCDEF0123456789ABCDEF', '0'.repeat(32), 'abc', `${'a'.repeat(32)}\n`, `${'a'.repeat(31)};`]) {
    rejects({ ...GOOD, machineId }, 'VMFORK_INVALID_ARGUMENT', /machineId/);
  }
  const id = newMachineId();
  assert.match(id, /^[0-9a-f]{32}$/);
  assert.notEqual(id, newMachineId());
  assert.doesNotThrow(() => validateIdentity({ ...GOOD, machineId: id }));
});

test('interface names are checked', () => {
  for (const iface of ['', '.', '..', 'eth0;id', 'a'.repeat(16), 'eth 0', 'eth0/x']) rejects({ ...GOOD, interface: iface }, 'VMFORK_INVALID_ARGUMENT', /interface/);
});

test('IPv4: dotted quads, a usable address, the gateway inside the subnet', () => {
  const bad: [ChildIdentity['ipv4'], RegExp][] = [
    [{ address: '10.231.0.5;x', prefix: 24, gateway: '10.231.0.1' }, /ipv4.address/],
    [{ address: '10.231.0.05', prefix: 24, gateway: '10.231.0.1' }, /ipv4.address/],
    [{ address: '10.231.0.5', prefix: 31, gateway: '10.231.0.4' }, /ipv4.prefix/],
    [{ address: '10.231.0.5', prefix: 24.5, gateway: '10.231.0.1' }, /ipv4.prefix/],
    [{ address: '10.231.0.0', prefix: 24, gateway: '10.231.0.1' }, /network or broadcast/],
    [{ address: '10.231.0.255', prefix: 24, gateway: '10.231.0.1' }, /network or broadcast/],
    [{ address: '127.0.0.5', prefix: 8, gateway: '127.0.0.1' }, /usable/],
    [{ address: '224.0.0.5', prefix: 24, gateway: '224.0.0.1' }, /usable/],
    [{ address: '10.231.0.5', prefix: 24, gateway: '10.231.1.1' }, /not inside 10.231.0.0\/24/],
    [{ address: '10.231.0.5', prefix: 24, gateway: '10.231.0.5' }, /address itself/],
    [{ address: '10.231.0.5', prefix: 24, gateway: 'gw' }, /ipv4.gateway/],
  ];
  for (const [ipv4, why] of bad) rejects({ ...GOOD, ipv4 }, 'VMFORK_INVALID_ARGUMENT', why);
});
