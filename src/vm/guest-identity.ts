import type { GuestAgentClient } from '../qemu/guest-agent-client.js';
import { VmforkError } from '../errors.js';

/** What the guest itself says it is, read through the agent (never from vmfork's own records). */
export interface GuestIdentity {
  bootId: string;
  hostname: string;
  uptimeSeconds: number;
  kernel: string;
}

// One exec for all fields: each guest-exec round trip costs hundreds of ms under TCG.
const SCRIPT = 'cat /proc/sys/kernel/random/boot_id; hostname; cut -d" " -f1 /proc/uptime; uname -r';

export async function readGuestIdentity(agent: GuestAgentClient): Promise<GuestIdentity> {
  const r = await agent.sh(SCRIPT, { timeoutMs: 30_000 });
  const [bootId, hostname, uptime, kernel] = r.stdout.toString().trim().split('\n');
  if (r.exitCode !== 0 || !bootId || !hostname || !uptime || !kernel) {
    throw new VmforkError('VMFORK_AGENT_ERROR', `reading the guest identity failed (exit ${r.exitCode}): ${r.stderr.toString().trim()}`);
  }
  return { bootId, hostname, uptimeSeconds: Number(uptime), kernel };
}
