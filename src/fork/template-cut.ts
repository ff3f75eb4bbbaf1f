import { VmforkError } from '../errors.js';
import type { GuestAgentClient } from '../qemu/guest-agent-client.js';
import { QmpClient } from '../qemu/qmp-client.js';
import { shQuote } from '../identity/shell.js';
import { terminateProcess, waitForExit, type LaunchedProcess } from '../qemu/qemu-process.js';

/**
 * What the parent guest does right before the cut, in one exec: the NIC goes down with no address (a child must
 * never appear on the network as the template), per-machine files a child must not inherit are removed, sshd
 * stops so no child ever serves a template key, and `sync` puts the guest's dirty data on the template disk (RAM
 * and disk are captured at the same instant anyway; sync keeps the disk alone consistent too).
 */
export const PREPARE_SCRIPT = [
  'set -u',
  'ip link set dev eth0 down 2>/dev/null || true',
  'ip addr flush dev eth0 2>/dev/null || true',
  'ip neigh flush all 2>/dev/null || true',
  'systemctl stop ssh.service ssh.socket 2>/dev/null || true',
  'rm -f /etc/ssh/ssh_host_* /var/lib/systemd/random-seed /var/lib/dhcp/*.leases /run/systemd/netif/leases/* 2>/dev/null',
  'sync',
  'echo prepared',
].join('\n');

export async function prepareTemplateGuest(agent: GuestAgentClient): Promise<void> {
  const r = await agent.sh(PREPARE_SCRIPT, { timeoutMs: 60_000 });
  if (r.exitCode !== 0 || !r.stdout.toString().includes('prepared')) {
    throw new VmforkError('VMFORK_AGENT_ERROR', `preparing the template guest failed (exit ${r.exitCode}): ${r.stderr.toString().trim()}`);
  }
}

/**
 * The cut: stop the vCPUs (the instruction every child resumes at), save device state only — x-ignore-shared
 * leaves the RAM in the shared file — then quit. The order matters: capabilities must be set before `migrate`,
 * and QEMU must not run a single instruction between `stop` and the end of the save.
 */
export async function cutTemplate(qmpPath: string, statePath: string, proc: LaunchedProcess): Promise<{ cutMs: number; stateBytes?: number }> {
  const qmp = await QmpClient.connect(qmpPath, { connectTimeoutMs: 10_000 });
  const t0 = performance.now();
  try {
    await qmp.stop();
    await qmp.migrateSetCapabilities([{ capability: 'x-ignore-shared', state: true }]);
    // QEMU runs an exec: URI through /bin/sh
    await qmp.migrate(`exec:cat > ${shQuote(statePath)}`);
    const info = await qmp.waitForMigration({ timeoutMs: 120_000, pollMs: 5 });
    const cutMs = performance.now() - t0;
    await qmp.quit();
    const bytes = (info as { ram?: { transferred?: number } }).ram?.transferred;
    if (!(await waitForExit(proc.pid, proc.startTime, 10_000))) await terminateProcess(proc.pid, proc.startTime, { graceMs: 2_000 });
    return bytes === undefined ? { cutMs } : { cutMs, stateBytes: bytes };
  } finally {
    qmp.close();
  }
}
