import { COLLISION_FIELDS, type ChildFacts, type Collision, type CollisionField, type Problem } from './types.js';

/** The fields findCollisions reads. */
export type ComparableFacts = Pick<ChildFacts, 'name' | 'hostname' | 'mac' | 'qemuMac' | 'ipv4' | 'ipv6LinkLocal' | 'machineId' | 'urandom' | 'sshHostKeys'>;

export interface ProblemLimits {
  /**
   * A clock is a problem when it is provably off by more than this: |offset| minus the half-window of its own
   * measurement (a loaded host widens the window; its midpoint alone is not evidence). @default 2000
   */
  maxClockOffsetMs?: number;
  /** Host key types every child must serve (ssh-keygen's spelling). @default ['ED25519'] (what the identity pipeline makes) */
  sshKeyTypes?: readonly string[];
}

/**
 * Values are compared the way the network compares them: MACs, hex ids and host names case-insensitively
 * (DNS and Ethernet are), IPv6 in lower case; a missing or empty value is never equal to anything, so a child
 * that could not be read produces problems, not false collisions.
 */
function valuesOf(child: ComparableFacts, field: CollisionField): string[] {
  const norm = (v: string | null): string[] => {
    const s = v?.trim().toLowerCase();
    return s ? [s] : [];
  };
  switch (field) {
    case 'sshHostKey':
      // fingerprints are base64: case matters
      return [...new Set(child.sshHostKeys.map((k) => k.fingerprint.trim()).filter(Boolean))];
    default:
      return norm(child[field]);
  }
}

/**
 * Every value of a compared field held by two or more children, grouped: one entry per (field, value) listing
 * all its holders in input order, so three children sharing a machine-id are one collision, not three pairs.
 */
export function findCollisions(children: readonly ComparableFacts[]): Collision[] {
  const out: Collision[] = [];
  for (const field of COLLISION_FIELDS) {
    const holders = new Map<string, string[]>();
    for (const child of children) {
      for (const value of valuesOf(child, field)) {
        const list = holders.get(value) ?? [];
        if (!list.includes(child.name)) list.push(child.name);
        holders.set(value, list);
      }
    }
    for (const [value, names] of holders) if (names.length > 1) out.push({ field, value, children: names });
  }
  return out;
}

const REQUIRED_GUEST_FIELDS = ['hostname', 'mac', 'ipv4', 'ipv6LinkLocal', 'machineId', 'bootId', 'urandom', 'clockOffsetMs'] as const;

/** What is wrong with one child on its own (collisions need the others: findCollisions). */
export function findProblems(child: ChildFacts, limits: ProblemLimits = {}): Problem[] {
  const maxOffset = limits.maxClockOffsetMs ?? 2000;
  const out: Problem[] = [];
  const add = (kind: Problem['kind'], detail: string): void => void out.push({ child: child.name, kind, detail });
  const failed = new Set(child.errors.map((e) => e.source));
  for (const e of child.errors) add('collection-failed', `${e.source}: ${e.code}: ${e.message}`);
  // a source that failed already has its problem; absent values are only news when their source answered
  if (!failed.has('guest')) {
    const missing = REQUIRED_GUEST_FIELDS.filter((f) => child[f] === null || child[f] === '');
    if (missing.length) add('missing-value', `the guest reported no ${missing.join(', ')}`);
  }
  if (!failed.has('qmp') && !child.qemuMac) add('missing-value', 'QEMU reported no main-mac for the NIC');
  if (child.mac && child.qemuMac && child.mac.toLowerCase() !== child.qemuMac.toLowerCase()) {
    add('mac-mismatch', `guest eth0 has ${child.mac} but QEMU's NIC filters on ${child.qemuMac}`);
  }
  if (child.bootIdMatchesTemplate === false) {
    add('rebooted', `boot_id ${child.bootId ?? '?'} is not the template's ${child.templateBootId ?? '?'}: the child booted instead of resuming`);
  }
  const atLeast = child.clockOffsetMs === null ? 0 : Math.abs(child.clockOffsetMs) - (child.clockUncertaintyMs ?? 0);
  if (child.clockOffsetMs !== null && atLeast > maxOffset) {
    add('clock-offset', `guest clock is ${formatOffset(child.clockOffsetMs, child.clockUncertaintyMs)} off the host's: at least ${atLeast.toFixed(1)} ms (limit ±${maxOffset} ms)`);
  }
  if (child.reachable === false) add('unreachable', `no ICMP echo reply from ${child.ipv4 ?? '?'} inside ${child.netns ?? '?'}`);
  const served = new Set(child.sshHostKeys.map((k) => k.type.toUpperCase()));
  const absent = (limits.sshKeyTypes ?? ['ED25519']).filter((t) => !served.has(t.toUpperCase()));
  // without an address or a namespace no scan ran: that cause is reported already
  if (absent.length && child.ipv4 && child.netns && !failed.has('ssh')) {
    add('missing-ssh-host-key', `ssh-keyscan got no ${absent.join(', ')} host key from ${child.ipv4}`);
  }
  if (child.ipv6Flags.includes('dadfailed')) add('ipv6-dad-failed', `${child.ipv6LinkLocal ?? 'link-local address'} is flagged dadfailed: another host on the bridge uses it`);
  return out;
}

/** `+12.3 ±4.1 ms` — the offset with the half round trip that bounds it (always in ms: one unit to compare). */
export function formatOffset(offsetMs: number, uncertaintyMs: number | null): string {
  const sign = offsetMs >= 0 ? '+' : '-';
  return `${sign}${Math.abs(offsetMs).toFixed(1)}${uncertaintyMs === null ? '' : ` ±${uncertaintyMs.toFixed(1)}`} ms`;
}
