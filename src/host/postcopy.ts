import { readFile } from 'node:fs/promises';
import { qemuConfinement } from '../config/index.js';

const SYSCTL = '/proc/sys/vm/unprivileged_userfaultfd';

/**
 * Whether this host's QEMUs can receive memory by postcopy (a lazy child, docs/lazy-replicas.md): the receiving
 * QEMU needs userfaultfd. Root may always; QEMU confined to its own uid only when `vm.unprivileged_userfaultfd` is
 * 1 (QEMU 7.2 does not use /dev/userfaultfd). The sysctl is the host's, so vmfork reports it and never sets it.
 */
export async function postcopyReady(options: { sysctl?: string } = {}): Promise<{ on: boolean; why: string }> {
  const c = await qemuConfinement();
  if (!c.on) return { on: true, why: `QEMU runs as vmfork's own user (${c.reason}), which may use userfaultfd` };
  const value = (await readFile(options.sysctl ?? SYSCTL, 'utf8').catch(() => '')).trim();
  if (value === '1') return { on: true, why: 'vm.unprivileged_userfaultfd = 1: a confined QEMU may use userfaultfd' };
  return {
    on: false,
    why: `QEMU runs confined to its own uid and vm.unprivileged_userfaultfd = ${value || 'unknown'}: postcopy needs userfaultfd (sysctl -w vm.unprivileged_userfaultfd=1 allows it to every user; see docs/lazy-replicas.md)`,
  };
}
