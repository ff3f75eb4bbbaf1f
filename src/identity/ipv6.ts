import { VmforkError } from '../errors.js';

/**
 * The link-local address the kernel derives from a MAC with addr_gen_mode eui64 (modified EUI-64, RFC 4291
 * appendix A: flip the U/L bit, insert ff:fe in the middle), written as the kernel prints it (RFC 5952).
 */
export function eui64LinkLocal(mac: string): string {
  const b = mac.split(':').map((x) => parseInt(x, 16));
  if (b.length !== 6 || b.some((x) => !(x >= 0 && x <= 255))) throw new VmforkError('VMFORK_INVALID_ARGUMENT', `not a MAC: ${mac}`, { details: { mac } });
  const [b0 = 0, b1 = 0, b2 = 0, b3 = 0, b4 = 0, b5 = 0] = b;
  const groups = [0xfe80, 0, 0, 0, ((b0 ^ 0x02) << 8) | b1, (b2 << 8) | 0xff, (0xfe << 8) | b3, (b4 << 8) | b5];
  return compressIpv6(groups);
}

/** 8 groups → RFC 5952 text: lower-case, no leading zeros, the longest run (≥ 2) of zero groups as `::`. */
export function compressIpv6(groups: readonly number[]): string {
  let best = { at: -1, len: 0 };
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === 0) j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.len < 2) return hex.join(':');
  return `${hex.slice(0, best.at).join(':')}::${hex.slice(best.at + best.len).join(':')}`;
}

/** Parses IPv6 text (with at most one `::`, no embedded IPv4) into 8 groups; undefined when malformed. */
export function parseIpv6(text: string): number[] | undefined {
  const halves = text.toLowerCase().split('::');
  if (halves.length > 2) return undefined;
  const part = (s: string | undefined): number[] | undefined => {
    if (!s) return [];
    const gs = s.split(':');
    return gs.every((g) => /^[0-9a-f]{1,4}$/.test(g)) ? gs.map((g) => parseInt(g, 16)) : undefined;
  };
  const head = part(halves[0]);
  const tail = part(halves[1]);
  if (!head || !tail) return undefined;
  if (halves.length === 1) return head.length === 8 ? head : undefined;
  const missing = 8 - head.length - tail.length;
  return missing >= 1 ? [...head, ...new Array<number>(missing).fill(0), ...tail] : undefined;
}

/** True when two IPv6 texts name the same address (`fe80::1` = `fe80:0:0:0:0:0:0:1`). */
export function sameIpv6(a: string, b: string): boolean {
  const x = parseIpv6(a);
  const y = parseIpv6(b);
  return x !== undefined && y !== undefined && x.every((g, i) => g === y[i]);
}

export interface IfInet6Address {
  address: string;
  prefix: number;
  tentative: boolean;
  dadFailed: boolean;
}

/**
 * Lines `ADDR32HEX PREFIXHEX FLAGSHEX` as the identity script prints them from /proc/net/if_inet6. Flags are the
 * kernel's IFA_F_*: 0x40 tentative, 0x08 dadfailed. Malformed lines are skipped.
 */
export function parseIfInet6(lines: readonly string[]): IfInet6Address[] {
  const out: IfInet6Address[] = [];
  for (const line of lines) {
    const m = /^([0-9a-f]{32}) ([0-9a-f]{1,2}) ([0-9a-f]{1,8})$/i.exec(line.trim());
    if (!m?.[1] || !m[2] || !m[3]) continue;
    const hex = m[1];
    const groups = Array.from({ length: 8 }, (_, i) => parseInt(hex.slice(i * 4, i * 4 + 4), 16));
    const flags = parseInt(m[3], 16);
    out.push({ address: compressIpv6(groups), prefix: parseInt(m[2], 16), tentative: (flags & 0x40) !== 0, dadFailed: (flags & 0x08) !== 0 });
  }
  return out;
}
