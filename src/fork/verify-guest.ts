import { VmforkError } from '../errors.js';
import type { GuestAgentClient } from '../qemu/guest-agent-client.js';

/**
 * Everything `verify` reads inside the guest, in ONE guest-exec: under TCG each exec costs a round trip of
 * tens of ms, and one exec also gives one host-side window around the guest's clock reading. Each value is
 * printed under its own `@@section` line and parsed host-side, so a failing command leaves only its own section
 * empty. The NIC is eth0 because the image boots with net.ifnames=0.
 */
export const GUEST_SCRIPT = [
  "sec() { printf '\\n@@%s\\n' \"$1\"; }",
  // cat without a fork: under TCG every fork + exec of a small program costs tens of ms
  'show() { while IFS= read -r _l || [ -n "$_l" ]; do printf \'%s\\n\' "$_l"; done < "$1"; }',
  'sec clock; date +%s%N',
  'sec hostname; show /proc/sys/kernel/hostname',
  'sec mac; show /sys/class/net/eth0/address',
  'sec ipv4; ip -4 -o addr show dev eth0',
  'sec ipv6ll; ip -6 -o addr show dev eth0 scope link',
  'sec machine-id; show /etc/machine-id',
  'sec boot-id; show /proc/sys/kernel/random/boot_id',
  'sec urandom; head -c32 /dev/urandom | od -An -tx1',
  // the second reading bounds the offset from the other side (see clockOffset)
  'sec clock-end; date +%s%N',
  'sec end',
].join('\n');

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

function sections(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  let current: string | undefined;
  let lines: string[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^@@([a-z0-9-]+)$/.exec(line);
    if (m?.[1]) {
      if (current) out.set(current, lines.join('\n').trim());
      current = m[1];
      lines = [];
    } else if (current) {
      lines.push(line);
    }
  }
  if (current) out.set(current, lines.join('\n').trim());
  return out;
}

const orNull = (s: string | undefined): string | null => (s ? s : null);

/** Parses GUEST_SCRIPT's output; an empty or malformed section becomes null. */
export function parseGuestOutput(stdout: string): GuestReadout {
  const s = sections(stdout);
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

/** Epoch ms with sub-ms resolution (Date.now() would add up to 1 ms of quantisation to a ~10 ms window). */
export function hostNowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Runs GUEST_SCRIPT through an open agent connection and times it for the clock offset. */
export async function readGuest(agent: GuestAgentClient, options: { timeoutMs?: number } = {}): Promise<GuestReadout & { stderr: string; clock: GuestClock | null }> {
  // sync + ping first, outside the window: the first command on a connection resynchronises the stream
  await agent.ping({ timeoutMs: options.timeoutMs ?? 30_000 });
  const start = hostNowMs();
  // poll fast: the clock window ends only when the exit is seen
  const r = await agent.sh(GUEST_SCRIPT, { timeoutMs: options.timeoutMs ?? 30_000, pollMs: 5 });
  const end = hostNowMs();
  const out = r.stdout.toString();
  if (!out.includes('@@end')) {
    throw new VmforkError('VMFORK_AGENT_ERROR', `the verify script did not finish (exit ${r.exitCode}): ${r.stderr.toString().trim()}`, {
      details: { exitCode: r.exitCode },
    });
  }
  const readout = parseGuestOutput(out);
  return { ...readout, stderr: r.stderr.toString().trim(), clock: readout.clockNs === null ? null : clockOffset(readout.clockNs, readout.clockEndNs, start, end) };
}
