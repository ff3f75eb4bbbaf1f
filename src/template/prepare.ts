import { VmforkError } from '../errors.js';
import type { GuestAgentClient } from '../qemu/index.js';

/**
 * What the parent guest does right before the cut, in one exec: the boot is waited for (a job still queued at the
 * cut runs again in every child — a serial-getty starting hangs up ttyS0, an ifup brings the NIC back up; see
 * guest/src/prepare.c, step_boot; bounded at 90 s, then cut anyway), then the NIC goes down with no address (a child must
 * never appear on the network as the template), per-machine files a child must not inherit are removed, sshd
 * stops so no child ever serves a template key, udev settles and its idle workers go (each child would reap them),
 * and `sync` puts the guest's dirty data on the template disk (RAM and disk are captured at the same instant
 * anyway; sync keeps the disk alone consistent too).
 */
export const PREPARE_SCRIPT = [
  'set -u',
  'timeout 90 systemctl is-system-running --wait >/dev/null 2>&1 || true',
  'ip link set dev eth0 down 2>/dev/null || true',
  'ip addr flush dev eth0 2>/dev/null || true',
  'ip neigh flush all 2>/dev/null || true',
  'systemctl stop ssh.service ssh.socket 2>/dev/null || true',
  'rm -f /etc/ssh/ssh_host_* /var/lib/systemd/random-seed /var/lib/dhcp/*.leases /run/systemd/netif/leases/* 2>/dev/null',
  // udevd's idle workers live 3 s after its queue empties: frozen alive, every child would reap them (prepare.c, step_udev)
  'timeout 30 udevadm settle 2>/dev/null || true',
  'i=0; while [ $i -lt 150 ] && grep -qx "(udev-worker)" /proc/[1-9]*/comm 2>/dev/null; do sleep 0.1; i=$((i+1)); done',
  'sync',
  'echo prepared',
].join('\n');

export async function prepareTemplateGuest(agent: Pick<GuestAgentClient, 'sh'>): Promise<void> {
  const r = await agent.sh(PREPARE_SCRIPT, { timeoutMs: 150_000 });
  if (r.exitCode !== 0 || !r.stdout.toString().includes('prepared')) {
    throw new VmforkError('VMFORK_AGENT_ERROR', `preparing the template guest failed (exit ${r.exitCode}): ${r.stderr.toString().trim()}`);
  }
}
