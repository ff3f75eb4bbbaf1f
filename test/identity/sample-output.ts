/**
 * What a real guest prints for the identity script (format captured from the bookworm guest), generated for any
 * identity so parser and verification tests can start from a correct run and break one thing at a time.
 */
import { eui64LinkLocal, parseIpv6 } from '../../src/identity/ipv6.js';
import type { NormalizedIdentity } from '../../src/identity/types.js';

export const BOOT_ID = '3f0c5a52-2b1e-4f0e-9a47-0d5cbe6b9a11';

/** Real public keys (generated once with ssh-keygen) and the fingerprints `ssh-keygen -lf` printed for them. */
export const SAMPLE_KEYS = {
  ed25519: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC9l2+DrQmVZhWaHTR2JHDoMwj8d/wAVbAUw41uOQ4va root@sample',
  ecdsa:
    'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEidkAd7/XpizBq+jlyXKNfFIaLOVh0NwUEhZCeYHsVErKm1GJtgbWbpPNnCjaMhVZmn06IUSODT/Qxhvkh74p0= root@sample',
};
export const SAMPLE_FINGERPRINTS = {
  ed25519: 'ED25519 SHA256:qHOXIWzMRa8g1KeNRNWCqIjL+nFzCEq3HFaqzaU7ACs',
  ecdsa: 'ECDSA SHA256:ge5IocgR9fpzG8RdSPzwkq2hAVm2VdL5SNtFUGHHSYs',
};

export type SampleFacts = Record<string, [key: string, value: string][]>;

/** /proc/net/if_inet6 fields as the script prints them: 32 hex digits, prefix length, flags (0x80 permanent). */
export function ifInet6Line(address: string, flags = '80'): string {
  const groups = parseIpv6(address);
  if (!groups) throw new Error(address);
  return `${groups.map((g) => g.toString(16).padStart(4, '0')).join('')} 40 ${flags}`;
}

export function sampleFacts(id: NormalizedIdentity, nowMs = Date.now()): SampleFacts {
  const ll = eui64LinkLocal(id.mac);
  const short = id.hostname.split('.')[0] ?? id.hostname;
  const hosts = short === id.hostname ? `127.0.1.1\t${id.hostname}` : `127.0.1.1\t${id.hostname}\t${short}`;
  return {
    clock: [
      ['stepped', '+308.123456789'],
      ['date_ns', `${BigInt(nowMs) * 1_000_000n + 123_456n}`],
    ],
    rng: [
      ['pushed_bytes', '64'],
      ['reseeded', '1'],
      ['vmgenid_reseeds', '1'],
    ],
    'machine-id': [
      ['journald', 'restarted'],
      ['etc', id.machineId],
      ['dbus', id.machineId],
    ],
    hostname: [
      ['kernel', id.hostname],
      ['etc', id.hostname],
      ['hosts', hosts],
    ],
    mac: [['address', id.mac]],
    'ipv6-link-local': [
      ['addr_gen_mode', '0'],
      ['disabled', '0'],
      ['operstate', 'up'],
      ['ll', ifInet6Line(ll, 'c0')],
    ],
    ipv4: id.ipv4
      ? [
          ['out', `2: ${id.interface}    inet ${id.ipv4.address}/${id.ipv4.prefix} brd 10.0.2.255 scope global ${id.interface}\\       valid_lft forever preferred_lft forever`],
          ['out', `default via ${id.ipv4.gateway} `],
        ]
      : [],
    'neighbours-leases': [['leases_left', '0']],
    'ssh-host-keys': [
      ['generated', '1'],
      ['sshd', 'reloaded'],
      ['marker', id.machineId],
      ['pubkey', SAMPLE_KEYS.ed25519],
    ],
    'random-seed': [['stat', '512 600 root']],
    guest: [['boot_id', BOOT_ID]],
  };
}

/** Renders facts as the script prints them; every step except `guest` also gets rc=0 and ms unless given. */
export function renderOutput(facts: SampleFacts, noise = true): string {
  const lines: string[] = [];
  for (const [step, kvs] of Object.entries(facts)) {
    if (noise) lines.push('some program chatter that is not a fact');
    for (const [k, v] of kvs) lines.push(`@@step=${step} ${k}=${v}`);
    if (step !== 'guest' && !kvs.some(([k]) => k === 'rc')) lines.push(`@@step=${step} rc=0`, `@@step=${step} ms=10`);
  }
  return `${lines.join('\n')}\n`;
}
