import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressesIn, parseIdentityOutput } from '../../src/identity/facts.js';
import { compressIpv6, eui64LinkLocal, parseIfInet6, parseIpv6, sameIpv6 } from '../../src/identity/ipv6.js';
import { IDENTITY_STEPS } from '../../src/identity/pipeline.js';
import { guestFacts, hostKeyFingerprints, verifySteps } from '../../src/identity/report.js';
import { sshFingerprint } from '../../src/identity/ssh-step.js';
import type { NormalizedIdentity, VerifyContext } from '../../src/identity/types.js';
import { validateIdentity } from '../../src/identity/validate.js';
import { BOOT_ID, SAMPLE_FINGERPRINTS, SAMPLE_KEYS, ifInet6Line, renderOutput, sampleFacts, type SampleFacts } from './sample-output.js';

const ID = validateIdentity({
  hostname: 'web-1',
  mac: '02:ab:cd:ef:01:23',
  machineId: '0123456789abcdef0123456789abcdef',
  ipv4: { address: '10.0.2.15', prefix: 24, gateway: '10.0.2.2' },
});
const NOW = Date.now();
const ctx = (identity: NormalizedIdentity = ID, clock: VerifyContext['clock'] = { offsetMs: 12 }): VerifyContext => ({
  identity,
  execWindowMs: { start: NOW - 300, end: NOW + 300 },
  entropyBytes: { rng: 64, seed: 512 },
  clock,
});
const OK = { exitCode: 0, stderr: '' };

function verify(facts: SampleFacts, identity = ID, clock?: VerifyContext['clock']) {
  return verifySteps(IDENTITY_STEPS, parseIdentityOutput(renderOutput(facts)), ctx(identity, clock), OK);
}
const byStep = (results: ReturnType<typeof verify>) => Object.fromEntries(results.map((r) => [r.step, r]));
/** A correct run with one step's facts replaced. */
const withFacts = (step: string, kvs: SampleFacts[string], identity = ID): SampleFacts => ({ ...sampleFacts(identity, NOW), [step]: kvs });

test('the parser keeps every value per key, ignores noise and malformed lines', () => {
  const out = parseIdentityOutput('junk\n@@step=a k=1\n@@step=a k=2 with spaces\r\n@@step=a empty=\n@@step=Bad k=1\n@@step=b nokey\n@@stepx=c k=1\n @@step=d k=1\n');
  assert.deepEqual([...out.keys()], ['a']);
  assert.deepEqual(out.get('a')?.get('k'), ['1', '2 with spaces']);
  assert.deepEqual(out.get('a')?.get('empty'), ['']);
});

test('a correct guest report verifies every step, with details and guest-side durations', () => {
  const results = verify(sampleFacts(ID, NOW));
  assert.deepEqual(
    results.filter((r) => !r.ok),
    [],
  );
  assert.deepEqual(
    results.map((r) => r.step),
    IDENTITY_STEPS.map((s) => s.name),
  );
  const s = byStep(results);
  assert.equal(s.rng?.ms, 10);
  assert.match(s.rng?.detail ?? '', /64 bytes of host entropy; CRNG reseeded now.*1 vmgenid reseed/);
  assert.equal(s['ipv6-link-local']?.detail, 'fe80::ab:cdff:feef:123 (duplicate address detection in progress)');
  assert.equal(s.ipv4?.detail, '10.0.2.15/24 via 10.0.2.2');
  assert.equal(s.clock?.detail, 'stepped by 308123 ms; offset 12 ms');
});

test('a step that printed nothing failed, and says how the script ended', () => {
  const facts = sampleFacts(ID, NOW);
  delete facts.hostname;
  const out = parseIdentityOutput(renderOutput(facts));
  const r = byStep(verifySteps(IDENTITY_STEPS, out, ctx(), { exitCode: 2, stderr: 'sh: 99: Syntax error: "fi" unexpected\n' }));
  assert.equal(r.hostname?.ok, false);
  assert.match(r.hostname?.detail ?? '', /reported nothing.*exit 2.*Syntax error/);
  assert.equal(r.mac?.ok, true);
});

test('a non-zero rc fails the step with its own stderr, whatever facts it printed', () => {
  const r = byStep(verify(withFacts('mac', [['rc', '2'], ['stderr', 'Cannot find device "eth0"'], ['address', ID.mac]])));
  assert.equal(r.mac?.ok, false);
  assert.equal(r.mac?.detail, 'exited 2: Cannot find device "eth0"');
});

test('missing or wrong facts fail the step that owns them', () => {
  const v4 = (a: string): string => `2: eth0    inet ${a} scope global eth0\\       valid_lft forever`;
  const cases: [string, SampleFacts[string], RegExp][] = [
    ['clock', [], /no clock step/],
    ['clock', [['stepped', '+0.000000005'], ['date_ns', `${BigInt(NOW - 60_000) * 1_000_000n}`]], /outside the exec window/],
    ['rng', [['pushed_bytes', '0']], /pushed 0 bytes/],
    ['machine-id', [['etc', 'f'.repeat(32)]], /\/etc\/machine-id is/],
    ['machine-id', [], /did not report \/etc\/machine-id/],
    ['machine-id', [['etc', ID.machineId], ['dbus', 'e'.repeat(32)]], /dbus/],
    ['hostname', [['kernel', 'vmfork-template'], ['etc', 'web-1'], ['hosts', '127.0.1.1 web-1']], /kernel hostname is "vmfork-template"/],
    ['hostname', [['kernel', 'web-1'], ['etc', 'web-1'], ['hosts', '127.0.1.1 web-1'], ['hosts', '127.0.1.1 old']], /127.0.1.1 lines/],
    ['hostname', [['kernel', 'web-1'], ['etc', 'web-1']], /127.0.1.1 lines are \[\]/],
    ['mac', [['address', '52:54:00:12:00:00']], /guest MAC is "52:54:00:12:00:00"/],
    ['ipv6-link-local', [['disabled', '0'], ['addr_gen_mode', '0'], ['ll', ifInet6Line('fe80::5054:ff:fe12:0')]], /\[fe80::5054:ff:fe12:0\].*expected fe80::ab:cdff:feef:123/],
    ['ipv6-link-local', [['disabled', '0'], ['addr_gen_mode', '0']], /addresses are \[\]/],
    ['ipv6-link-local', [['disabled', '0'], ['addr_gen_mode', '0'], ['ll', ifInet6Line('fe80::ab:cdff:feef:123', '88')]], /failed duplicate address detection/],
    ['ipv6-link-local', [['disabled', '0'], ['addr_gen_mode', '2']], /addr_gen_mode/],
    ['ipv4', [], /addresses are \[\]/],
    ['ipv4', [['out', v4('10.0.2.15/24')], ['out', v4('10.0.2.99/24')], ['out', 'default via 10.0.2.2']], /10.0.2.99/],
    ['ipv4', [['out', v4('10.0.2.15/24')]], /default routes are via \[\]/],
    ['ipv4', [['out', v4('10.0.2.15/24')], ['out', 'default via 10.0.2.1']], /via \[10.0.2.1\]/],
    ['neighbours-leases', [['leases_left', '1']], /could not be removed/],
    ['ssh-host-keys', [['marker', ID.machineId], ['sshd', 'reloaded'], ['pubkey', SAMPLE_KEYS.ecdsa]], /no ed25519 host key/],
    // the template's keys of another type must be gone once new keys were generated
    ['ssh-host-keys', [['generated', '1'], ['marker', ID.machineId], ['sshd', 'reloaded'], ['pubkey', SAMPLE_KEYS.ed25519], ['pubkey', SAMPLE_KEYS.ecdsa]], /not made for this child are left: ECDSA/],
    ['ssh-host-keys', [['marker', 'f'.repeat(32)]], /marker/],
    ['ssh-host-keys', [['marker', ID.machineId], ['sshd', 'failed'], ['pubkey', SAMPLE_KEYS.ed25519]], /sshd: failed/],
    ['random-seed', [['stat', '0 600 root']], /random seed/],
    ['random-seed', [['stat', '512 644 root']], /random seed/],
  ];
  for (const [step, kvs, why] of cases) {
    const r = byStep(verify(withFacts(step, kvs)))[step];
    assert.equal(r?.ok, false, `${step} ${JSON.stringify(kvs)}`);
    assert.match(r?.detail ?? '', why);
  }
});

test('the clock step: a set-time error or a large final offset fails it; a guest-set-time correction is reported', () => {
  assert.match(byStep(verify(sampleFacts(ID, NOW), ID, { offsetMs: 400, setTimeError: 'hwclock failed' })).clock?.detail ?? '', /guest-set-time failed: hwclock/);
  const far = byStep(verify(sampleFacts(ID, NOW), ID, { offsetMs: -4000 })).clock;
  assert.equal(far?.ok, false);
  assert.match(far?.detail ?? '', /-4000 ms off/);
  const lateDate: SampleFacts[string] = [['stepped', '+300.000000000'], ['date_ns', `${BigInt(NOW - 60_000) * 1_000_000n}`]];
  const corrected = byStep(verify(withFacts('clock', lateDate), ID, { offsetMs: 2, correctedWithAgent: true })).clock;
  assert.equal(corrected?.ok, true, 'after a guest-set-time correction the script\'s own date no longer matters');
  assert.equal(corrected?.detail, 'stepped by 300000 ms, then corrected with guest-set-time; offset 2 ms');
  assert.equal(byStep(verify(withFacts('clock', lateDate), ID, { offsetMs: 2 })).clock?.ok, false, 'not corrected: the date must fit the window');
});

test('the clock step judges an offset against its own measurement: off only when |offset| − half-window > 1 s', () => {
  const clock = (offsetMs: number, uncertaintyMs?: number) => byStep(verify(sampleFacts(ID, NOW), ID, uncertaintyMs === undefined ? { offsetMs } : { offsetMs, uncertaintyMs })).clock;
  // a reading taken while the host was loaded: wide, and its midpoint alone would be called wrong
  const wide = clock(-1500, 605);
  assert.equal(wide?.ok, true, wide?.detail);
  assert.equal(wide?.detail, 'stepped by 308123 ms; offset -1500 ms ±605');
  assert.equal(clock(1_600, 605)?.ok, true, '1600 − 605 = 995 ms at least: within the tolerance');
  const off = clock(-1_700, 605);
  assert.equal(off?.ok, false, '1700 − 605 = 1095 ms at least');
  assert.match(off?.detail ?? '', /the guest clock is -1700 ms ±605 off/);
  assert.equal(clock(-300_000, 2_000)?.ok, false, 'a stale clock stays wrong however wide the bar');
  assert.equal(clock(1_001)?.ok, false, 'no bar: the offset as measured');
});

test('without ipv4 the step passes only when the guest has no global IPv4 address and no default route', () => {
  const noV4 = { ...ID, ipv4: undefined };
  assert.equal(byStep(verify(sampleFacts(noV4, NOW), noV4)).ipv4?.ok, true);
  assert.equal(byStep(verify(withFacts('ipv4', [['out', '2: eth0 inet 10.0.2.15/24 scope global eth0']], noV4), noV4)).ipv4?.ok, false);
});

test('IPv6 disabled in the guest is reported, not failed', () => {
  const r = byStep(verify(withFacts('ipv6-link-local', [['disabled', '1']])))['ipv6-link-local'];
  assert.equal(r?.ok, true);
  assert.match(r?.detail ?? '', /disabled/);
});

test('guest facts and fingerprints come from what the guest printed', () => {
  const out = parseIdentityOutput(renderOutput(sampleFacts(ID, NOW)));
  assert.deepEqual(guestFacts(out, 7), {
    hostname: 'web-1',
    machineId: ID.machineId,
    mac: ID.mac,
    bootId: BOOT_ID,
    clockOffsetMs: 7,
    ipv4: { address: '10.0.2.15', prefix: 24, gateway: '10.0.2.2' },
    ipv6LinkLocal: 'fe80::ab:cdff:feef:123',
  });
  assert.deepEqual(hostKeyFingerprints(out), [SAMPLE_FINGERPRINTS.ed25519]);
});

test('EUI-64 link-local addresses are derived and compared as the kernel prints them', () => {
  assert.equal(eui64LinkLocal('52:54:00:12:00:00'), 'fe80::5054:ff:fe12:0');
  assert.equal(eui64LinkLocal('02:ab:cd:ef:01:23'), 'fe80::ab:cdff:feef:123');
  assert.equal(eui64LinkLocal('02:00:00:00:00:01'), 'fe80::ff:fe00:1');
  assert.equal(compressIpv6([1, 0, 0, 2, 0, 0, 0, 3]), '1:0:0:2::3');
  assert.equal(compressIpv6([1, 0, 2, 0, 3, 0, 4, 0]), '1:0:2:0:3:0:4:0');
  assert.deepEqual(parseIpv6('fe80::1'), [0xfe80, 0, 0, 0, 0, 0, 0, 1]);
  assert.equal(parseIpv6('fe80::1::2'), undefined);
  assert.equal(parseIpv6('1:2:3:4:5:6:7:8:9'), undefined);
  assert.ok(sameIpv6('FE80:0:0:0:0:0:0:1', 'fe80::1'));
  assert.deepEqual(addressesIn(['2: eth0    inet6 fe80::1/64 scope link \\       valid_lft forever'], 'inet6'), [{ address: 'fe80::1', prefix: 64 }]);
  assert.deepEqual(parseIfInet6(['fe8000000000000000ab cdfffeef0123 40 80'.replace(' ', ''), 'fe80000000000000000000000000000x 40 80', 'fe800000000000000000000000000001 40 48']), [
    { address: 'fe80::ab:cdff:feef:123', prefix: 64, tentative: false, dadFailed: false },
    { address: 'fe80::1', prefix: 64, tentative: true, dadFailed: true },
  ]);
});

test('host key fingerprints computed from the public keys match ssh-keygen -lf', () => {
  assert.equal(sshFingerprint(SAMPLE_KEYS.ed25519), SAMPLE_FINGERPRINTS.ed25519);
  assert.equal(sshFingerprint(SAMPLE_KEYS.ecdsa), SAMPLE_FINGERPRINTS.ecdsa);
  assert.equal(sshFingerprint('not a key'), undefined);
  assert.equal(sshFingerprint('ssh-ed25519 !!!'), undefined);
  assert.equal(sshFingerprint(SAMPLE_KEYS.ed25519.replace('ssh-ed25519', 'ssh-rsa')), undefined, 'type and blob disagree');
});

test('a failed epilogue fails its step; ms include the epilogue; a deferred action whose epilogue never ran fails', () => {
  const base = sampleFacts(ID, NOW);
  const r = byStep(
    verify({
      ...base,
      'machine-id': [...(base['machine-id'] ?? []), ['epilogue_rc', '1'], ['epilogue_ms', '30'], ['epilogue_stderr', 'Failed to restart systemd-journald.service']],
      'ssh-host-keys': [...(base['ssh-host-keys'] ?? []), ['epilogue_rc', '0'], ['epilogue_ms', '20']],
    }),
  );
  assert.equal(r['machine-id']?.ok, false);
  assert.equal(r['machine-id']?.detail, 'epilogue exited 1: Failed to restart systemd-journald.service');
  assert.equal(r['machine-id']?.ms, 40);
  assert.equal(r['ssh-host-keys']?.ok, true);
  assert.equal(r['ssh-host-keys']?.ms, 30);
  const pending = byStep(verify(withFacts('machine-id', [['journald', 'restart-deferred'], ['etc', ID.machineId]])))['machine-id'];
  assert.match(pending?.detail ?? '', /epilogue did not run/);
  const sshPending = byStep(verify(withFacts('ssh-host-keys', [['marker', ID.machineId], ['sshd', 'reload-deferred'], ['pubkey', SAMPLE_KEYS.ed25519]])))['ssh-host-keys'];
  assert.match(sshPending?.detail ?? '', /sshd: reload-deferred/);
});
