import type { GuestAgentClient } from '../qemu/index.js';
import { readGuestFacts, type GuestFact } from '../vm/index.js';

/**
 * What `verify` reads inside the guest, in ONE guest-exec (src/vm/guest-facts.ts): the clock first and last, so
 * the host-side window around the exec bounds the guest clock's offset from both sides.
 */
export const VERIFY_FACTS: readonly GuestFact[] = ['clock', 'hostname', 'mac', 'ipv4', 'ipv6ll', 'machine-id', 'boot-id', 'urandom', 'clock-end'];

export interface GuestReadout {
  hostname: string | null;
  mac: string | null;
  ipv4: string | null;
  ipv6LinkLocal: string | null;
  ipv6Flags: string[];
  machineId: string | null;
  bootId: string | null;
  urandom: string | null;
  /** `date +%s%N` in the guest, first and last thing the script does. */
  clockNs: bigint | null;
  clockEndNs: bigint | null;
}

export interface GuestClock {
  /** Guest clock minus the midpoint of the host's window around the exec. */
  offsetMs: number;
  /** Half the window: the true offset lies within offsetMs ± this. */
  uncertaintyMs: number;
}

const orNull = (s: string | undefined): string | null => (s ? s : null);

/** Turns the sections read for VERIFY_FACTS into values; an empty or malformed section becomes null. */
export function parseGuestReadout(s: ReadonlyMap<string, string>): GuestReadout {
  const ns = (v: string | undefined): bigint | null => (v && /^\d{10,}$/.test(v) ? BigInt(v) : null);
  const ipv4 = /\binet (\d{1,3}(?:\.\d{1,3}){3})\/\d{1,2}\b/.exec(s.get('ipv4') ?? '');
  // `inet6 fe80::…/64 scope link dadfailed tentative \       valid_lft forever …`
  const ipv6 = /\binet6 ([0-9a-fA-F:]+)\/\d+ scope link((?: [a-z_]+)*)/.exec(s.get('ipv6ll') ?? '');
  const urandom = (s.get('urandom') ?? '').replace(/\s+/g, '').toLowerCase();
  const mac = (s.get('mac') ?? '').toLowerCase();
  return {
    hostname: orNull(s.get('hostname')),
    mac: /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac) ? mac : null,
    ipv4: ipv4?.[1] ?? null,
    ipv6LinkLocal: ipv6?.[1]?.toLowerCase() ?? null,
    ipv6Flags: (ipv6?.[2] ?? '').trim().split(/\s+/).filter(Boolean),
    machineId: orNull(s.get('machine-id')?.toLowerCase()),
    bootId: orNull(s.get('boot-id')?.toLowerCase()),
    // exactly 32 bytes, or the read was cut short: never report a partial value as entropy
    urandom: /^[0-9a-f]{64}$/.test(urandom) ? urandom : null,
    clockNs: ns(s.get('clock')),
    clockEndNs: ns(s.get('clock-end')),
  };
}

/**
 * Bounds guest − host from both sides. The host sent the exec at hostStart and saw it exit at hostEnd; the guest
 * read its clock at guestStart (first command) and guestEnd (last). guestStart happened after hostStart and
 * guestEnd before hostEnd, so the offset lies in [guestEnd − hostEnd, guestStart − hostStart]: the window minus
 * the script's own run time. A slow guest therefore does not widen the bound — only the exec's start-up and the
 * exit's detection do. Without the second reading it is the whole window.
 */
export function clockOffset(guestStartNs: bigint, guestEndNs: bigint | null, hostStartMs: number, hostEndMs: number): GuestClock {
  const ms = (v: bigint): number => Number(v / 1000n) / 1000;
  const hi = ms(guestStartNs) - hostStartMs;
  const lo = ms(guestEndNs ?? guestStartNs) - hostEndMs;
  const round = (v: number): number => Math.round(v * 10) / 10;
  // lo > hi only if the guest clock was stepped during the exec: the spread is still the honest error bar
  return { offsetMs: round((lo + hi) / 2), uncertaintyMs: round(Math.abs(hi - lo) / 2) };
}

/** Reads VERIFY_FACTS through an open agent connection, with the clock offset from the exec's time window. */
export async function readGuest(agent: Pick<GuestAgentClient, 'ping' | 'sh'>, options: { timeoutMs?: number } = {}): Promise<GuestReadout & { stderr: string; clock: GuestClock | null }> {
  const r = await readGuestFacts(agent, VERIFY_FACTS, options);
  const readout = parseGuestReadout(r.sections);
  return { ...readout, stderr: r.stderr, clock: readout.clockNs === null ? null : clockOffset(readout.clockNs, readout.clockEndNs, r.hostStartMs, r.hostEndMs) };
}
