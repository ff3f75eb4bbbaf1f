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
  'sec clock; date +%s%N',
  'sec hostname; cat /proc/sys/kernel/hostname',
  'sec mac; cat /sys/class/net/eth0/address',
  'sec ipv4; ip -4 -o addr show dev eth0',
  'sec ipv6ll; ip -6 -o addr show dev eth0 scope link',
  'sec machine-id; cat /etc/machine-id',
  'sec boot-id; cat /proc/sys/kernel/random/boot_id',
  'sec urandom; head -c32 /dev/urandom | od -An -tx1',
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
  /** `date +%s%N` in the guest. */
  clockNs: bigint | null;
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
  const clock = s.get('clock') ?? '';
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
    clockNs: /^\d{10,}$/.test(clock) ? BigInt(clock) : null,
  };
}

/**
 * The guest read its clock at some host instant inside [startMs, endMs] (the exec was sent at start; the
 * status saying it exited arrived at end), so guest − midpoint is off by at most half the window.
 */
export function clockOffset(clockNs: bigint, startMs: number, endMs: number): GuestClock {
  const guestMs = Number(clockNs / 1000n) / 1000;
  const round = (v: number): number => Math.round(v * 10) / 10;
  return { offsetMs: round(guestMs - (startMs + endMs) / 2), uncertaintyMs: round((endMs - startMs) / 2) };
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
  return { ...readout, stderr: r.stderr.toString().trim(), clock: readout.clockNs === null ? null : clockOffset(readout.clockNs, start, end) };
}
