import { createHash, randomBytes } from 'node:crypto';

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** Lower-cases a colon-separated MAC; undefined when it is not one. */
export function normalizeMac(mac: string): string | undefined {
  const m = mac.trim().toLowerCase();
  return MAC.test(m) ? m : undefined;
}

function firstOctet(mac: string): number | undefined {
  const m = normalizeMac(mac);
  return m === undefined ? undefined : parseInt(m.slice(0, 2), 16);
}

/** A unicast MAC (I/G bit clear) that is not all zeros: the only kind a NIC may carry. */
export function isUnicastMac(mac: string): boolean {
  const first = firstOctet(mac);
  return first !== undefined && (first & 0x01) === 0 && normalizeMac(mac) !== '00:00:00:00:00:00';
}

/**
 * True for a locally administered unicast MAC (first octet: U/L bit 1 set, I/G bit 0 clear). Such addresses can
 * never collide with a vendor's burnt-in address. QEMU's default prefix 52:54:00 is one too (0x52 has bit 1 set),
 * but every QEMU uses it, so vmfork draws all 46 free bits at random instead.
 */
export function isLocallyAdministeredUnicast(mac: string): boolean {
  const first = firstOctet(mac);
  return first !== undefined && (first & 0x03) === 0x02;
}

/**
 * A random locally administered unicast MAC. 46 random bits: collisions are rare but possible, so callers check
 * uniqueness against the leases (allocateLease does, and retries).
 */
export function randomLocalMac(random: (n: number) => Uint8Array = randomBytes): string {
  const b = Array.from(random(6));
  b[0] = ((b[0] ?? 0) & 0xfc) | 0x02;
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/**
 * The fixed, locally administered MAC of a network's bridge, derived from what names it (owner and namespace), so a
 * rebuild after a reboot gets the same one. A bridge without an address of its own takes its lowest port's, and
 * changes it whenever that tap goes: every guest's cached MAC of the gateway is then wrong (replies to the
 * namespace are lost until the guest's entry expires) and the namespace flushes all its neighbours.
 */
export function bridgeMac(seed: string): string {
  const b = Array.from(createHash('sha256').update(`vmfork bridge ${seed}`).digest().subarray(0, 6));
  b[0] = ((b[0] ?? 0) & 0xfc) | 0x02;
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}
