import { VmforkError } from '../errors.js';

/**
 * Smallest network we accept: a /16 already holds 65,533 VMs, and a bigger one would make "lowest free address"
 * scans and `network show` listings unreasonably large.
 */
export const MIN_PREFIX = 16;
/** Largest prefix: a /30 is the smallest network with a gateway and one VM address. */
export const MAX_PREFIX = 30;

/** A parsed IPv4 network. Addresses are unsigned 32-bit integers. */
export interface Cidr {
  /** Network address (host bits cleared). */
  network: number;
  prefix: number;
  /** Canonical text, e.g. `10.231.0.0/24`. */
  text: string;
  /** True when the input had host bits set (`10.0.0.5/24`) and was normalized to the network address. */
  normalized: boolean;
}

const OCTET = /^(0|[1-9][0-9]{0,2})$/;

/**
 * Only private ranges (RFC 1918): nothing leaves a vmfork namespace, and keeping guests off public addresses means
 * a guest can never mistake a VM for a real host on the internet, even if egress is added one day.
 */
const PRIVATE_RANGES: readonly (readonly [number, number])[] = [
  [ipToInt('10.0.0.0'), 8],
  [ipToInt('172.16.0.0'), 12],
  [ipToInt('192.168.0.0'), 16],
];


/** Parses a dotted quad strictly (no leading zeros: `010` would be octal to some tools); undefined when invalid. */
export function parseIpv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!OCTET.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    n = n * 256 + v;
  }
  return n;
}

function ipToInt(text: string): number {
  const n = parseIpv4(text);
  if (n === undefined) throw new VmforkError('VMFORK_INVALID_CIDR', `"${text}" is not an IPv4 address`);
  return n;
}

export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function maskOf(prefix: number): number {
  // `>>> 0` keeps the result unsigned; a shift by 32 is a no-op in JS, hence the special case.
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

function isPrivate(network: number, prefix: number): boolean {
  return PRIVATE_RANGES.some(([base, p]) => prefix >= p && ((network & maskOf(p)) >>> 0) === base);
}

/**
 * Parses `a.b.c.d/N` with N in MIN_PREFIX..MAX_PREFIX inside a private range. Host bits are accepted and
 * cleared (`normalized` says so) because `10.0.0.1/24` is a common way of writing "the /24 around this address".
 */
export function parseCidr(input: string): Cidr {
  const text = input.trim();
  const fail = (why: string): VmforkError =>
    new VmforkError('VMFORK_INVALID_CIDR', `"${input}": ${why}`, { details: { cidr: input } });
  const slash = text.split('/');
  if (slash.length !== 2) throw fail('expected a.b.c.d/N');
  const [addrText = '', prefixText = ''] = slash;
  const addr = parseIpv4(addrText);
  if (addr === undefined) throw fail(`"${addrText}" is not an IPv4 address`);
  if (!/^[0-9]{1,2}$/.test(prefixText)) throw fail(`"/${prefixText}" is not a prefix length`);
  const prefix = Number(prefixText);
  if (prefix < MIN_PREFIX || prefix > MAX_PREFIX) throw fail(`prefix /${prefix} is outside /${MIN_PREFIX}../${MAX_PREFIX}`);
  const network = (addr & maskOf(prefix)) >>> 0;
  if (!isPrivate(network, prefix)) throw fail('not inside a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)');
  return { network, prefix, text: `${formatIpv4(network)}/${prefix}`, normalized: network !== addr };
}

export function broadcastOf(c: Cidr): number {
  return (c.network | ~maskOf(c.prefix)) >>> 0;
}

/** The gateway is the first host address; it lives on the bridge inside the network's namespace. */
export function gatewayOf(c: Cidr): string {
  return formatIpv4(c.network + 1);
}

/** Addresses VMs may lease: everything but the network address, the gateway and the broadcast address. */
export function vmRange(c: Cidr): { first: number; last: number; count: number } {
  const first = c.network + 2;
  const last = broadcastOf(c) - 1;
  return { first, last, count: last - first + 1 };
}

/** Offset of `ip` from the network address, or undefined when it is not an address VMs may lease. */
export function vmIndex(c: Cidr, ip: string): number | undefined {
  const n = parseIpv4(ip);
  const { first, last } = vmRange(c);
  return n !== undefined && n >= first && n <= last ? n - c.network : undefined;
}

/** The lowest VM address not in `used`, or undefined when the range is exhausted. */
export function allocate(c: Cidr, used: Iterable<string>): string | undefined {
  const taken = new Set<number>();
  for (const ip of used) {
    const n = parseIpv4(ip);
    if (n !== undefined) taken.add(n);
  }
  const { first, last } = vmRange(c);
  for (let n = first; n <= last; n++) {
    if (!taken.has(n)) return formatIpv4(n);
  }
  return undefined;
}
