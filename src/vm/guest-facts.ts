import { VmforkError } from '../errors.js';
import type { GuestAgentClient } from '../qemu/index.js';
import { hostNowMs } from '../util/index.js';

/**
 * The one way vmfork reads facts inside a guest: ONE guest-exec of a sectioned sh script (under TCG every exec
 * costs a round trip of tens of ms, and one exec also gives one host-side time window around the guest's clock
 * readings). Each fact is printed under its own `@@name` line and parsed host-side, so a failing command leaves
 * only its own section empty. Cold boot, `verify` and the benchmarks all read through here. The NIC is eth0
 * because the image boots with net.ifnames=0.
 */
const COMMANDS = {
  clock: 'date +%s%N',
  hostname: 'show /proc/sys/kernel/hostname',
  mac: 'show /sys/class/net/eth0/address',
  ipv4: 'ip -4 -o addr show dev eth0',
  ipv6ll: 'ip -6 -o addr show dev eth0 scope link',
  'machine-id': 'show /etc/machine-id',
  'boot-id': 'show /proc/sys/kernel/random/boot_id',
  urandom: 'head -c32 /dev/urandom | od -An -tx1',
  uptime: 'show /proc/uptime',
  kernel: 'show /proc/sys/kernel/osrelease',
  // a second clock reading, last: it bounds the guest − host offset from the other side (see verify's clockOffset)
  'clock-end': 'date +%s%N',
} as const;

export type GuestFact = keyof typeof COMMANDS;

const PRELUDE = [
  "sec() { printf '\\n@@%s\\n' \"$1\"; }",
  // cat without a fork: under TCG every fork + exec of a small program costs tens of ms
  'show() { while IFS= read -r _l || [ -n "$_l" ]; do printf \'%s\\n\' "$_l"; done < "$1"; }',
];

export interface GuestFactsOptions {
  /** `sync` first, so writes still in the guest's page cache reach its disk before anything is measured. */
  sync?: boolean;
  /** @default 30_000 */
  timeoutMs?: number;
}

/** The script reading `facts` in order, ending with an `@@end` marker (its absence means the script was cut short). */
export function guestFactsScript(facts: readonly GuestFact[], options: Pick<GuestFactsOptions, 'sync'> = {}): string {
  return [...PRELUDE, ...(options.sync ? ['sync'] : []), ...facts.map((f) => `sec ${f}; ${COMMANDS[f]}`), 'sec end'].join('\n');
}

/** Splits the script's output into its sections (trimmed); lines before the first marker are ignored. */
export function parseSections(stdout: string): Map<string, string> {
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

export interface GuestFactsReadout {
  sections: Map<string, string>;
  stderr: string;
  /** Host epoch ms just before the exec was sent and just after its exit was seen. */
  hostStartMs: number;
  hostEndMs: number;
}

/** Reads `facts` through an open agent connection. VMFORK_AGENT_ERROR when the script did not run to its end. */
export async function readGuestFacts(agent: Pick<GuestAgentClient, 'ping' | 'sh'>, facts: readonly GuestFact[], options: GuestFactsOptions = {}): Promise<GuestFactsReadout> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  // sync + ping first, outside the window: the first command on a connection resynchronises the stream
  await agent.ping({ timeoutMs });
  const hostStartMs = hostNowMs();
  // poll fast: a clock window ends only when the exit is seen
  const r = await agent.sh(guestFactsScript(facts, options), { timeoutMs, pollMs: 5 });
  const hostEndMs = hostNowMs();
  const out = r.stdout.toString();
  if (!out.includes('@@end')) {
    throw new VmforkError('VMFORK_AGENT_ERROR', `reading guest facts did not finish (exit ${r.exitCode}): ${r.stderr.toString().trim()}`, {
      details: { exitCode: r.exitCode },
    });
  }
  return { sections: parseSections(out), stderr: r.stderr.toString().trim(), hostStartMs, hostEndMs };
}

/** What the guest itself says it is, read through the agent (never from vmfork's own records). */
export interface GuestIdentity {
  bootId: string;
  hostname: string;
  uptimeSeconds: number;
  kernel: string;
}

export async function readGuestIdentity(agent: Pick<GuestAgentClient, 'ping' | 'sh'>): Promise<GuestIdentity> {
  const { sections, stderr } = await readGuestFacts(agent, ['boot-id', 'hostname', 'uptime', 'kernel']);
  const [bootId, hostname, uptime, kernel] = [sections.get('boot-id'), sections.get('hostname'), sections.get('uptime')?.split(' ')[0], sections.get('kernel')];
  if (!bootId || !hostname || !uptime || !kernel) {
    throw new VmforkError('VMFORK_AGENT_ERROR', `reading the guest identity failed: ${stderr || 'a value was missing'}`);
  }
  return { bootId, hostname, uptimeSeconds: Number(uptime), kernel };
}
