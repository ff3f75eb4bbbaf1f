import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findCollisions, findProblems, formatOffset } from '../../src/verify/compare.js';
import type { ChildFacts } from '../../src/verify/types.js';
import { childFacts as child } from './facts.js';

test('distinct children: no collision, no problem', () => {
  const kids = [child(1), child(2), child(3)];
  assert.deepEqual(findCollisions(kids), []);
  for (const c of kids) assert.deepEqual(findProblems(c), []);
});

test('a pairwise collision on each compared field is reported with both names', () => {
  const cases: [string, Partial<ChildFacts>, string][] = [
    ['hostname', { hostname: 'c-1' }, 'c-1'],
    ['mac', { mac: '52:54:00:00:00:01' }, '52:54:00:00:00:01'],
    ['qemuMac', { qemuMac: '52:54:00:00:00:01' }, '52:54:00:00:00:01'],
    ['ipv4', { ipv4: '10.231.0.3' }, '10.231.0.3'],
    ['ipv6LinkLocal', { ipv6LinkLocal: 'fe80::5054:ff:fe00:01' }, 'fe80::5054:ff:fe00:01'],
    ['machineId', { machineId: '1'.padStart(32, '0') }, '1'.padStart(32, '0')],
    ['urandom', { urandom: (1001).toString(16).padStart(64, '0') }, (1001).toString(16).padStart(64, '0')],
  ];
  for (const [field, over, value] of cases) {
    const got = findCollisions([child(1), child(2, over), child(3)]);
    assert.deepEqual(got, [{ field, value, children: ['c-1', 'c-2'] }], field);
  }
});

test('one shared SSH host key fingerprint is a collision, even when the other key differs', () => {
  const shared = child(2, { sshHostKeys: [{ type: 'ED25519', fingerprint: 'SHA256:ed1', bits: 256 }, { type: 'ECDSA', fingerprint: 'SHA256:other', bits: 256 }] });
  assert.deepEqual(findCollisions([child(1), shared]), [{ field: 'sshHostKey', value: 'SHA256:ed1', children: ['c-1', 'c-2'] }]);
});

test('fingerprints compare case-sensitively (base64), MACs and host names case-insensitively', () => {
  const kids = [child(1), child(2, { sshHostKeys: [{ type: 'ED25519', fingerprint: 'SHA256:ED1', bits: 256 }], mac: '52:54:00:00:00:01'.toUpperCase(), hostname: 'C-1' })];
  const fields = findCollisions(kids).map((c) => c.field);
  assert.deepEqual(fields, ['hostname', 'mac']);
});

test('a three-way collision is one entry naming all three, in input order', () => {
  const id = 'f'.repeat(32);
  const kids = [child(3, { machineId: id }), child(1, { machineId: id }), child(2, { machineId: id }), child(4)];
  assert.deepEqual(findCollisions(kids), [{ field: 'machineId', value: id, children: ['c-3', 'c-1', 'c-2'] }]);
});

test('identical clones collide on every field at once', () => {
  const a = child(1);
  const b = { ...child(1), name: 'c-2' };
  const got = findCollisions([a, b]);
  assert.deepEqual(got.map((c) => c.field), ['hostname', 'mac', 'qemuMac', 'ipv4', 'ipv6LinkLocal', 'machineId', 'sshHostKey', 'urandom']);
  assert.ok(got.every((c) => c.children.join() === 'c-1,c-2'));
});

test('missing values (null, empty, no keys) never count as collisions', () => {
  const blank = (i: number): ChildFacts =>
    child(i, { hostname: null, mac: '', qemuMac: null, ipv4: null, ipv6LinkLocal: '  ', machineId: null, urandom: null, sshHostKeys: [] });
  assert.deepEqual(findCollisions([blank(1), blank(2), blank(3)]), []);
});

test('a child whose guest could not be read: one collection problem, no cascade of missing values', () => {
  const c = child(1, {
    hostname: null, mac: null, ipv4: null, ipv6LinkLocal: null, machineId: null, bootId: null, urandom: null,
    clockOffsetMs: null, clockUncertaintyMs: null, bootIdMatchesTemplate: null, reboots: null, reachable: null, sshHostKeys: [],
    errors: [{ source: 'guest', code: 'VMFORK_AGENT_TIMEOUT', message: 'guest-exec: no reply within 30000 ms' }],
  });
  const problems = findProblems(c);
  assert.deepEqual(problems.map((p) => p.kind), ['collection-failed']);
  assert.match(problems[0]?.detail ?? '', /^guest: VMFORK_AGENT_TIMEOUT/);
});

test('per-child problems: MAC mismatch, reboot, clock, unreachable, missing key, DAD failure', () => {
  const kinds = (over: Partial<ChildFacts>): string[] => findProblems(child(1, over)).map((p) => p.kind);
  assert.deepEqual(kinds({ qemuMac: '52:54:00:00:00:99' }), ['mac-mismatch']);
  assert.deepEqual(kinds({ qemuMac: '52:54:00:00:00:01'.toUpperCase() }), [], 'case alone is no mismatch');
  assert.deepEqual(kinds({ bootId: 'other', bootIdMatchesTemplate: false, reboots: null }), ['rebooted']);
  assert.deepEqual(kinds({ clockOffsetMs: -308_000 }), ['clock-offset']);
  assert.deepEqual(kinds({ clockOffsetMs: 2012, clockUncertaintyMs: 12 }), [], 'the limit itself is allowed');
  assert.deepEqual(kinds({ clockOffsetMs: 2012.1, clockUncertaintyMs: 12 }), ['clock-offset']);
  assert.deepEqual(kinds({ clockOffsetMs: 2000.1, clockUncertaintyMs: null }), ['clock-offset'], 'no bar: the offset as measured');
  // judged against the measurement's own half-window: 2259 ± 605 ms is at least 1654 ms off, within the limit
  assert.deepEqual(kinds({ clockOffsetMs: 2259, clockUncertaintyMs: 605 }), [], 'a wide bar under load is not a problem');
  assert.deepEqual(kinds({ clockOffsetMs: -2606, clockUncertaintyMs: 605 }), ['clock-offset'], '2606 − 605 = 2001 ms at least');
  assert.deepEqual(kinds({ clockOffsetMs: -300_000, clockUncertaintyMs: 5_000 }), ['clock-offset'], 'a stale clock stays a problem');
  assert.deepEqual(kinds({ reachable: false }), ['unreachable']);
  assert.deepEqual(kinds({ sshHostKeys: [{ type: 'ECDSA', fingerprint: 'SHA256:x', bits: 256 }] }), ['missing-ssh-host-key']);
  assert.deepEqual(kinds({ sshHostKeys: [] }), ['missing-ssh-host-key']);
  assert.deepEqual(kinds({ ipv6Flags: ['dadfailed', 'tentative'] }), ['ipv6-dad-failed']);
  assert.deepEqual(kinds({ ipv4: null, reachable: null, sshHostKeys: [] }), ['missing-value'], 'no address: no scan, one cause');
  assert.deepEqual(kinds({ qemuMac: null }), ['missing-value']);
});

test('limits are configurable: clock limit and required key types', () => {
  const c = child(1, { clockOffsetMs: 150, sshHostKeys: [{ type: 'ED25519', fingerprint: 'SHA256:x', bits: 256 }] });
  assert.deepEqual(findProblems(c, { maxClockOffsetMs: 100 }).map((p) => p.kind), ['clock-offset'], 'ed25519 alone is what a child serves');
  assert.deepEqual(findProblems(c, { maxClockOffsetMs: 200, sshKeyTypes: ['ED25519', 'ECDSA'] }).map((p) => p.kind), ['missing-ssh-host-key']);
});

test('a VM that is not a child (no template boot_id) is not reported as rebooted', () => {
  assert.deepEqual(findProblems(child(1, { template: null, templateBootId: null, bootIdMatchesTemplate: null, reboots: null })), []);
});

test('formatOffset: signed ms with the half round trip', () => {
  assert.equal(formatOffset(3.25, 12), '+3.3 ±12.0 ms');
  assert.equal(formatOffset(-308000, 4.5), '-308000.0 ±4.5 ms');
  assert.equal(formatOffset(0, null), '+0.0 ms');
});
