import type { ChildFacts } from '../../src/verify/types.js';

/** A healthy child: every field distinct per index. Overrides make it collide or fail. */
export function childFacts(i: number, over: Partial<ChildFacts> = {}): ChildFacts {
  const hex = (n: number, len: number): string => n.toString(16).padStart(len, '0');
  return {
    name: `c-${i}`,
    template: 't',
    netns: 'vmfork-default',
    hostname: `c-${i}`,
    mac: `52:54:00:00:00:${hex(i, 2)}`,
    qemuMac: `52:54:00:00:00:${hex(i, 2)}`,
    ipv4: `10.231.0.${i + 2}`,
    ipv6LinkLocal: `fe80::5054:ff:fe00:${hex(i, 2)}`,
    ipv6Flags: [],
    machineId: hex(i, 32),
    bootId: 'b0b0b0b0-0000-4000-8000-000000000000',
    templateBootId: 'b0b0b0b0-0000-4000-8000-000000000000',
    bootIdMatchesTemplate: true,
    reboots: 0,
    urandom: hex(i + 1000, 64),
    clockOffsetMs: 3.5,
    clockUncertaintyMs: 12,
    sshHostKeys: [
      { type: 'ED25519', fingerprint: `SHA256:ed${i}`, bits: 256 },
    ],
    reachable: true,
    pingRttMs: 0.8,
    collectMs: 100,
    sourceMs: { guest: 60, qmp: 5, netns: 3, ping: 10, ssh: 30 },
    errors: [],
    ...over,
  };
}
