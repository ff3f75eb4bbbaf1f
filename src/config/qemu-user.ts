import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Who a VM's QEMU runs as (issue 13 item 1, docs/security.md). The install step (scripts/ensure-deps.sh) makes the
 * system group and user `vmfork-qemu`; each VM's QEMU then drops from root to a uid of its own, taken from a
 * reserved range (one per live VM, recorded in the store: `vms.qemu_uid`), with the group `vmfork-qemu`. The group
 * is what lets every QEMU traverse the data dir and read what all of them share (template files, base images);
 * the uid is what keeps one VM's QEMU out of another VM's directory.
 */
export const QEMU_GROUP = 'vmfork-qemu';

/** The reserved uid range: below 2^31 (some tools misread larger uids), far above the login and subuid ranges (/etc/subuid's start at 100000, 65536 each). */
export const QEMU_UID_BASE = 1_900_000_000;
export const QEMU_UID_COUNT = 65_536;

/**
 * `-sandbox` (QEMU's seccomp filter): no obsolete syscalls, no fork/exec, no scheduler/affinity changes.
 * `elevateprivileges` stays `allow`: with `deny` QEMU 7.2 kills itself at `-runas`'s own setgid (the filter is
 * installed before the drop). After the drop the process has no capability and its saved uid is the VM's, so
 * set*uid can only name the VM's uid again, and a setuid program is out of reach with `spawn=deny`.
 */
export const SANDBOX_OPTION = 'on,obsolete=deny,elevateprivileges=allow,spawn=deny,resourcecontrol=deny';

export type Confinement = { on: true; gid: number; uidBase: number; uidCount: number } | { on: false; reason: string };

let cached: Promise<Confinement> | undefined;

/**
 * Whether QEMU runs confined here, and with which group: off when vmfork is not root (it cannot drop to another
 * uid), when the group is missing (install step not run), or when VMFORK_CONFINE=0 asks so (debugging only).
 */
export function qemuConfinement(env: NodeJS.ProcessEnv = process.env): Promise<Confinement> {
  cached ??= probe(env);
  return cached;
}

async function probe(env: NodeJS.ProcessEnv): Promise<Confinement> {
  if (env.VMFORK_CONFINE === '0') return { on: false, reason: 'VMFORK_CONFINE=0' };
  if (process.getuid?.() !== 0) return { on: false, reason: 'vmfork does not run as root: QEMU runs as vmfork\'s own user' };
  const gid = await groupId(QEMU_GROUP);
  if (gid === undefined) return { on: false, reason: `no group ${QEMU_GROUP} (run scripts/ensure-deps.sh as root)` };
  return { on: true, gid, uidBase: QEMU_UID_BASE, uidCount: QEMU_UID_COUNT };
}

async function groupId(name: string): Promise<number | undefined> {
  const out = await run('getent', ['group', name]).then((r) => r.stdout, () => '');
  const gid = Number(out.split(':')[2]);
  return Number.isInteger(gid) && gid > 0 ? gid : undefined;
}
