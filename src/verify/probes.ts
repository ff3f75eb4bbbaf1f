import { VmforkError } from '../errors.js';
import { execInNetns, ip, scanSshHostKeyLines } from '../network/index.js';
import { QmpClient } from '../qemu/index.js';
import { run } from '../util/index.js';
import type { SshHostKey } from './types.js';

/**
 * The host-side probes of `verify`: each asks a real party (the kernel, QEMU, the child's sshd, the child's IP
 * stack) rather than vmfork's records, and all network traffic stays inside the child's own namespace.
 */

/**
 * The named namespace the process lives in, as the kernel says (`ip netns identify` compares the process's
 * /proc/PID/ns/net with every /run/netns entry). Null when it is in no named namespace.
 */
export async function netnsOfProcess(pid: number): Promise<string | null> {
  const r = await ip(['netns', 'identify', String(pid)]);
  return r.stdout.split(/\s+/).find(Boolean) ?? null;
}

export interface QemuNic {
  nic: string;
  mainMac: string;
}

/**
 * `query-rx-filter`: the MAC QEMU's virtio-net device filters on, which follows what the guest driver
 * programmed. QEMU serves one QMP client at a time, so the connection is held for this one query only.
 */
export async function queryMainMac(qmpPath: string, options: { timeoutMs?: number } = {}): Promise<QemuNic | null> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const qmp = await QmpClient.connect(qmpPath, { connectTimeoutMs: timeoutMs });
  try {
    const [first] = await qmp.queryRxFilter(undefined, { timeoutMs });
    return first ? { nic: first.name, mainMac: first['main-mac'].toLowerCase() } : null;
  } finally {
    qmp.close();
  }
}

export interface PingResult {
  reachable: boolean;
  rttMs: number | null;
}

/**
 * An ICMP echo from inside the namespace (`ping -c1 -w4`: one per second until the first reply, for at most 4 s), so
 * one echo lost while a TCG guest is starved of CPU is not called unreachable; no reply is a result, not an error.
 */
export async function pingInNetns(netns: string, address: string): Promise<PingResult> {
  const r = await execInNetns(netns, 'ping', ['-n', '-c1', '-w4', address], { allowFailure: true, timeoutMs: 10_000 });
  const rtt = /time[=<]([\d.]+) ms/.exec(r.stdout);
  return { reachable: r.code === 0, rttMs: rtt?.[1] ? Number(rtt[1]) : null };
}

/** Parses `ssh-keygen -lf -` output: `256 SHA256:… 10.0.0.2 (ED25519)` per key. */
export function parseFingerprints(text: string): SshHostKey[] {
  const keys: SshHostKey[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+) (\S+:\S+) .*\(([A-Z0-9-]+)\)\s*$/.exec(line.trim());
    if (m?.[1] && m[2] && m[3]) keys.push({ type: m[3], fingerprint: m[2], bits: Number(m[1]) });
  }
  return keys.sort((a, b) => a.type.localeCompare(b.type));
}

/**
 * Host keys the child's sshd really serves: `ssh-keyscan` connects to the address inside the namespace, and the
 * fingerprints are computed on the host by `ssh-keygen -lf -` from what came over the wire. A port still closed
 * after `settleMs` or a silent sshd yields no keys (the caller reports that as a problem); a program failing to run
 * is an error.
 */
export async function scanHostKeys(
  netns: string,
  address: string,
  types: readonly string[] = ['ed25519'],
  options: { settleMs?: number } = {},
): Promise<SshHostKey[]> {
  const lines = await scanSshHostKeyLines(netns, address, types, options);
  if (lines.length === 0) return [];
  const fp = await run('ssh-keygen', ['-lf', '-'], { input: `${lines.join('\n')}\n`, allowFailure: true, timeoutMs: 10_000 });
  if (fp.code !== 0) {
    throw new VmforkError('VMFORK_INTERNAL', `ssh-keygen -lf - could not fingerprint the scanned keys: ${fp.stderr.trim()}`, { details: { exitCode: fp.code } });
  }
  return parseFingerprints(fp.stdout);
}
