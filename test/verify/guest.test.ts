import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { VERIFY_FACTS, clockOffset, parseGuestReadout } from '../../src/verify/guest.js';
import { guestFactsScript, parseSections } from '../../src/vm/guest-facts.js';

const GUEST_SCRIPT = guestFactsScript(VERIFY_FACTS);
const parseGuestOutput = (stdout: string): ReturnType<typeof parseGuestReadout> => parseGuestReadout(parseSections(stdout));

// What verify's guest-facts script prints on a Debian bookworm child (iproute2 6.1 one-line format, od's two rows of 16 bytes).
const SAMPLE = [
  '',
  '@@clock',
  '1795620604043785999',
  '',
  '@@hostname',
  'web-3',
  '',
  '@@mac',
  '52:54:00:AB:00:03',
  '',
  '@@ipv4',
  '2: eth0    inet 10.231.0.4/24 brd 10.231.0.255 scope global eth0\\       valid_lft forever preferred_lft forever',
  '',
  '@@ipv6ll',
  '2: eth0    inet6 fe80::5054:ff:feab:3/64 scope link \\       valid_lft forever preferred_lft forever',
  '',
  '@@machine-id',
  '0123456789abcdef0123456789ABCDEF',
  '',
  '@@boot-id',
  '3f1c3a52-6a33-4a4e-9d38-0b6f6c2c9e11',
  '',
  '@@urandom',
  ' f7 fc b0 10 eb 97 e7 3b 9e 3b d9 7a 51 57 b2 37',
  ' f6 02 7a ff fd be 91 6a 90 e1 71 48 be d7 14 dc',
  '',
  '@@clock-end',
  '1795620604091785999',
  '',
  '@@end',
  '',
].join('\n');

test('parses every section of a real-format readout', () => {
  assert.deepEqual(parseGuestOutput(SAMPLE), {
    hostname: 'web-3',
    mac: '52:54:00:ab:00:03',
    ipv4: '10.231.0.4',
    ipv6LinkLocal: 'fe80::5054:ff:feab:3',
    ipv6Flags: [],
    machineId: '0123456789abcdef0123456789abcdef',
    bootId: '3f1c3a52-6a33-4a4e-9d38-0b6f6c2c9e11',
    urandom: 'f7fcb010eb97e73b9e3bd97a5157b237f6027afffdbe916a90e17148bed714dc',
    clockNs: 1795620604043785999n,
    clockEndNs: 1795620604091785999n,
  });
});

test('IPv6 flags after "scope link" are kept (the guest kernel\'s own duplicate detection)', () => {
  const out = SAMPLE.replace('scope link \\', 'scope link dadfailed tentative \\');
  assert.deepEqual(parseGuestOutput(out).ipv6Flags, ['dadfailed', 'tentative']);
});

test('empty or malformed sections become null, never a partial value', () => {
  const out = [
    '@@clock', 'date: invalid', '@@hostname', '', '@@mac', 'cat: /sys/class/net/eth0/address: No such file', '@@ipv4', '',
    '@@ipv6ll', '', '@@machine-id', '', '@@boot-id', 'x', '@@urandom', ' f7 fc b0', '@@end',
  ].join('\n');
  const r = parseGuestOutput(out);
  assert.equal(r.clockNs, null);
  assert.equal(r.hostname, null);
  assert.equal(r.mac, null);
  assert.equal(r.ipv4, null);
  assert.equal(r.ipv6LinkLocal, null);
  assert.deepEqual(r.ipv6Flags, []);
  assert.equal(r.machineId, null);
  assert.equal(r.urandom, null, 'a short read of /dev/urandom is not 32 bytes of entropy');
});

test('the script is valid POSIX sh and prints every section in order (run by dash on the host)', () => {
  execFileSync('dash', ['-n', '-c', GUEST_SCRIPT]);
  // Only the structure is checked here: the values are the host's, not a guest's (the itest runs it in a guest).
  const out = execFileSync('dash', ['-c', GUEST_SCRIPT], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const order = out.split('\n').filter((l) => l.startsWith('@@'));
  assert.deepEqual(order, ['@@clock', '@@hostname', '@@mac', '@@ipv4', '@@ipv6ll', '@@machine-id', '@@boot-id', '@@urandom', '@@clock-end', '@@end']);
  const r = parseGuestOutput(out);
  assert.match(r.urandom ?? '', /^[0-9a-f]{64}$/);
  assert.ok(r.clockNs !== null && r.clockNs > 1_700_000_000_000_000_000n);
  assert.ok(r.clockEndNs !== null && r.clockEndNs >= r.clockNs);
  assert.equal(r.hostname, readFileSync('/proc/sys/kernel/hostname', 'utf8').trim(), 'the fork-free reader returns the file');
});

test('clockOffset with one reading: guest minus the window midpoint, ± half the window', () => {
  // window 1000.000 … 1020.000 ms, guest read 1013.5 ms → +3.5 ± 10
  assert.deepEqual(clockOffset(1_013_500_000n, null, 1000, 1020), { offsetMs: 3.5, uncertaintyMs: 10 });
  // a stale guest (template frozen 5 minutes ago): −300 s
  const host = 1_795_620_604_000;
  assert.deepEqual(clockOffset(BigInt(host - 300_000) * 1_000_000n, null, host - 4, host + 4), { offsetMs: -300_000, uncertaintyMs: 4 });
});

test('clockOffset with two readings: the script\'s own run time is taken off the error bar', () => {
  // host window 0 … 2000 ms (a slow, loaded guest); the guest clock runs 50 ms ahead; the script started 100 ms
  // after the send and its last date ran 30 ms before the exit was seen → offset in [+20, +150]
  const base = 1_795_620_604_000;
  const g = (hostMs: number): bigint => BigInt(Math.round((base + hostMs + 50) * 1e6));
  const r = clockOffset(g(100), g(1970), base, base + 2000);
  assert.deepEqual(r, { offsetMs: 85, uncertaintyMs: 65 });
  assert.ok(Math.abs(r.offsetMs - 50) <= r.uncertaintyMs, 'the true offset is inside the bound');
});

test('clockOffset stays honest when the guest clock was stepped during the exec', () => {
  const base = 1_795_620_604_000;
  // the end reading is 10 s EARLIER than the start: lo > hi; the spread is reported, not hidden
  const r = clockOffset(BigInt(base + 100) * 1_000_000n, BigInt(base - 9_900) * 1_000_000n, base, base + 200);
  assert.equal(r.uncertaintyMs, 5100);
});

test('clockOffset keeps sub-ms precision for epoch-sized values', () => {
  const host = 1_795_620_604_043.25;
  const r = clockOffset(1_795_620_604_043_785_999n, null, host - 0.5, host + 0.5);
  assert.equal(r.offsetMs, 0.5);
  assert.equal(r.uncertaintyMs, 0.5);
});
