import { chmod, chown, lstat, readdir, stat } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { qemuConfinement, SANDBOX_OPTION } from '../config/index.js';
import type { VmSpec } from '../spec/index.js';
import { assignQemuUid } from '../store/index.js';
import type { VmDeps } from './vm-deps.js';

/** The uid/gid a confined QEMU runs as; absent when QEMU runs as vmfork's own user (confinement off). */
export interface QemuIdentity {
  uid: number;
  gid: number;
}

export interface ConfinedLaunch {
  /** Appended to the VM's argv: `-runas uid:gid -sandbox …` (none when confinement is off). */
  argv: string[];
  identity?: QemuIdentity;
}

/**
 * Readies a VM's files for its QEMU and returns the confining options (docs/security.md). QEMU starts as root,
 * opens everything its command line names (disks with their backing chains, the RAM file, tap, sockets, logs),
 * then `-runas` drops it to the VM's own uid before the guest runs a single instruction. What it opens after that
 * — a checkpoint's new overlay, a promotion's target, a migration socket — it opens as that uid, so the VM's
 * directory (and everything in it) is that uid's, 0700/0600; the directories above it let the group pass (0710,
 * no listing); no one else's VM directory, the store or the token is readable to it.
 */
export async function confineVm(deps: VmDeps, name: string, spec: VmSpec, dir: string): Promise<ConfinedLaunch> {
  const c = await qemuConfinement();
  if (!c.on) return { argv: [] };
  const uid = await assignQemuUid(deps.db, name, c.uidBase, c.uidCount);
  const identity = { uid, gid: c.gid };
  await passable(dir, c.gid, deps);
  await ownTree(dir, identity);
  // writable disks outside the VM's directory (a promotion onto another datastore): the VM's too
  for (const d of spec.disks) {
    if (d.readOnly || d.path.startsWith(dir + sep)) continue;
    await passable(dirname(d.path), c.gid, deps);
    await ownTree(dirname(d.path), identity);
  }
  return { argv: ['-runas', `${uid}:${c.gid}`, '-sandbox', SANDBOX_OPTION], identity };
}

/** Makes `path` (a directory made for a VM's QEMU to write in later, e.g. a promotion target) its QEMU's. */
export async function giveToQemu(deps: VmDeps, name: string, path: string): Promise<void> {
  const c = await qemuConfinement();
  if (!c.on) return;
  const uid = await assignQemuUid(deps.db, name, c.uidBase, c.uidCount);
  await passable(path, c.gid, deps);
  await ownTree(path, { uid, gid: c.gid });
}

/** chown -R to the VM's uid; directories 0700, files keep their mode but lose group/other bits. */
async function ownTree(path: string, id: QemuIdentity): Promise<void> {
  const s = await lstat(path).catch(() => undefined);
  if (!s || s.isSymbolicLink()) return;
  if (s.uid !== id.uid || s.gid !== id.gid) await chown(path, id.uid, id.gid);
  if (s.isDirectory()) {
    if ((s.mode & 0o777) !== 0o700) await chmod(path, 0o700);
    for (const entry of await readdir(path)) await ownTree(join(path, entry), id);
  } else if (s.isFile() && (s.mode & 0o077) !== 0) {
    await chmod(path, s.mode & 0o700);
  }
}

/**
 * Lets the QEMU group pass through the directories above `dir` (search only): up to `/`, each directory that
 * neither "other" nor the group may search gets group `gid` and g+x — only directories root owns with group root
 * (the data dir and its own subdirectories, a test's private temp dir); any other is left alone and logged.
 */
async function passable(dir: string, gid: number, deps: VmDeps): Promise<void> {
  for (let d = dirname(dir); ; d = dirname(d)) {
    const s = await stat(d);
    const other = (s.mode & 0o001) !== 0;
    const group = s.gid === gid && (s.mode & 0o010) !== 0;
    if (!other && !group) {
      if (s.uid === 0 && (s.gid === 0 || s.gid === gid)) {
        deps.log.info({ dir: d, group: gid }, 'confine: the QEMU group may now pass (search, not list) this directory');
        if (s.gid !== gid) await chown(d, 0, gid);
        await chmod(d, (s.mode & 0o700) | 0o010);
      } else {
        deps.log.warn({ dir: d, gid }, 'confine: the QEMU group cannot pass this directory; checkpoints and promotions of confined VMs below it will fail');
      }
    }
    if (d === dirname(d)) break;
  }
}
