import { probeCgroups } from './cgroup.js';
import type { CgroupSys } from './cgroup-detect.js';
import { qemuConfinement, QEMU_GROUP, QEMU_UID_BASE, SANDBOX_OPTION, type Confinement } from '../config/index.js';

/** One layer between a guest that escaped its QEMU and the host: on or off here, and why (`vmfork doctor`). */
export interface ConfinementLayer {
  layer: 'cgroups' | 'qemu-user' | 'sandbox' | 'file-modes' | 'chroot';
  on: boolean;
  why: string;
  /** What to do to turn it on; null when it is on. */
  fix: string | null;
}

export interface ConfinementOptions {
  /** The cgroup fs to probe (tests pass a fake mount table). */
  cgroups?: CgroupSys;
  /** Whether QEMU drops to its own user here (tests pass one). @default qemuConfinement() */
  qemu?: Confinement;
}

const qemuFix = (c: Confinement): string =>
  c.on ? '' : /VMFORK_CONFINE/.test(c.reason) ? 'unset VMFORK_CONFINE' : /root/.test(c.reason) ? 'run vmfork as root' : 'run scripts/ensure-deps.sh as root (it adds the group and user vmfork-qemu)';

/** The layers that follow from QEMU's own user: all three stand or fall with it (docs/security.md). */
function userLayers(c: Confinement): ConfinementLayer[] {
  if (!c.on) {
    const fix = qemuFix(c);
    return [
      { layer: 'qemu-user', on: false, why: `QEMU runs as vmfork's own user: ${c.reason}`, fix },
      { layer: 'sandbox', on: false, why: `off with the QEMU user (${c.reason}): the filter alone would not keep QEMU from the files root may read`, fix },
      { layer: 'file-modes', on: false, why: 'every file is private to vmfork\'s user (0700/0600): no per-VM separation', fix },
    ];
  }
  return [
    { layer: 'qemu-user', on: true, why: `each VM's QEMU drops to a uid of its own (${QEMU_UID_BASE}…, group ${QEMU_GROUP} = ${c.gid}) with -runas`, fix: null },
    { layer: 'sandbox', on: true, why: `-sandbox ${SANDBOX_OPTION}`, fix: null },
    { layer: 'file-modes', on: true, why: `each VM's directory is its uid's (0700); shared files are root:${QEMU_GROUP} 0640; the store and token root-only`, fix: null },
  ];
}

/**
 * Every layer, in the order doctor prints them. chroot is off by design, not for want of support: QEMU opens
 * files outside the VM's directory after it drops privileges (checkpoints, promotions, backing chains), so a
 * chroot would have to copy or bind-mount them; per-VM uids and 0700 directories already keep it out.
 */
async function probeAll(o: ConfinementOptions): Promise<ConfinementLayer[]> {
  const [cg, qemu] = await Promise.all([probeCgroups(o.cgroups), o.qemu ?? qemuConfinement()]);
  return [
    { layer: 'cgroups', ...cg, fix: cg.on ? null : 'run as root where cgroup v1 or v2 offers memory, cpu and pids (or set VMFORK_CGROUP_PARENT to a delegated subtree)' },
    ...userLayers(qemu),
    { layer: 'chroot', on: false, why: "by design: QEMU opens checkpoints, promoted images and backing files outside the VM's directory after it drops privileges; the per-VM uid keeps it out of the rest (docs/security.md)", fix: 'none offered: see docs/security.md, "chroot is off"' },
  ];
}

/** Each confinement layer as it stands on this host. Never throws: a probe that fails says off and why. */
export async function confinementLayers(options: ConfinementOptions = {}): Promise<ConfinementLayer[]> {
  return probeAll(options);
}
