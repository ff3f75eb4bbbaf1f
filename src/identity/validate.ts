import { randomBytes } from 'node:crypto';
import { VmforkError } from '../errors.js';
import { formatIpv4, isLocallyAdministeredUnicast, normalizeMac, parseIpv4 } from '../network/index.js';
import { isValidName } from '../util/index.js';
import type { ChildIdentity, NormalizedIdentity } from './types.js';

/** The kernel's HOST_NAME_MAX: `hostname` refuses anything longer. */
export const MAX_HOSTNAME_LENGTH = 64;
const MACHINE_ID = /^[0-9a-f]{32}$/;
// IFNAMSIZ allows 15 characters; '.' and '..' would name directories under /sys/class/net, not interfaces.
const IFNAME = /^[a-zA-Z0-9_.-]{1,15}$/;

/** A fresh machine id: 128 random bits as 32 lower-case hex digits, the format of /etc/machine-id. */
export function newMachineId(random: (n: number) => Buffer = randomBytes): string {
  return random(16).toString('hex');
}

export function isValidHostname(hostname: string): boolean {
  return hostname.length <= MAX_HOSTNAME_LENGTH && hostname.split('.').every(isValidName);
}

function invalid(what: string, value: unknown, why: string): VmforkError {
  return new VmforkError('VMFORK_INVALID_ARGUMENT', `identity ${what} ${JSON.stringify(value)} ${why}`, { details: { field: what } });
}

/**
 * Checks every field of an identity and fills in defaults. Everything that ends up in the guest script passes
 * through here, and each field is then also shell-quoted: validation is what keeps a hostname like `a;reboot`
 * out, quoting is the second line of defence.
 */
export function validateIdentity(identity: ChildIdentity): NormalizedIdentity {
  const { hostname, machineId } = identity;
  if (typeof hostname !== 'string' || !isValidHostname(hostname)) {
    throw new VmforkError(
      'VMFORK_INVALID_NAME',
      `hostname ${JSON.stringify(hostname)} must be RFC 1123 labels joined by '.': lower-case letters, digits and '-', at most ${MAX_HOSTNAME_LENGTH} characters`,
      { details: { field: 'hostname' } },
    );
  }
  const mac = typeof identity.mac === 'string' ? normalizeMac(identity.mac) : undefined;
  if (!mac || !isLocallyAdministeredUnicast(mac)) {
    throw invalid('mac', identity.mac, 'must be a locally administered unicast MAC like 02:ab:cd:ef:01:23');
  }
  if (typeof machineId !== 'string' || !MACHINE_ID.test(machineId) || /^0+$/.test(machineId)) {
    throw invalid('machineId', machineId, 'must be 32 lower-case hex digits, not all zero');
  }
  const iface = identity.interface ?? 'eth0';
  if (typeof iface !== 'string' || !IFNAME.test(iface) || iface === '.' || iface === '..') {
    throw invalid('interface', iface, 'must be an interface name of 1-15 letters, digits, _ . -');
  }
  const out: NormalizedIdentity = { hostname, mac, machineId, interface: iface };
  if (identity.ipv4 !== undefined) out.ipv4 = validateIpv4(identity.ipv4);
  return out;
}

function validateIpv4(ipv4: NonNullable<ChildIdentity['ipv4']>): NonNullable<NormalizedIdentity['ipv4']> {
  const { prefix } = ipv4;
  // /31 and /32 are left out: a gateway outside the address's own subnet would need an onlink route.
  if (!Number.isInteger(prefix) || prefix < 1 || prefix > 30) throw invalid('ipv4.prefix', prefix, 'must be a whole number from 1 to 30');
  const address = typeof ipv4.address === 'string' ? parseIpv4(ipv4.address) : undefined;
  const gateway = typeof ipv4.gateway === 'string' ? parseIpv4(ipv4.gateway) : undefined;
  if (address === undefined) throw invalid('ipv4.address', ipv4.address, 'is not a dotted-quad IPv4 address');
  if (gateway === undefined) throw invalid('ipv4.gateway', ipv4.gateway, 'is not a dotted-quad IPv4 address');
  const mask = (0xffffffff << (32 - prefix)) >>> 0;
  const hostBits = (address & ~mask) >>> 0;
  const first = address >>> 24;
  if (first === 0 || first === 127 || first >= 224) throw invalid('ipv4.address', ipv4.address, 'is not a usable unicast address');
  if (hostBits === 0 || hostBits === (~mask >>> 0)) throw invalid('ipv4.address', ipv4.address, `is the network or broadcast address of its /${prefix}`);
  if (((gateway & mask) >>> 0) !== ((address & mask) >>> 0)) {
    throw invalid('ipv4.gateway', ipv4.gateway, `is not inside ${formatIpv4((address & mask) >>> 0)}/${prefix}`);
  }
  if (gateway === address) throw invalid('ipv4.gateway', ipv4.gateway, 'is the address itself');
  return { address: formatIpv4(address), prefix, gateway: formatIpv4(gateway) };
}
