import { probeCgroups } from './cgroup.js';
import type { CgroupSys } from './cgroup-detect.js';

/** One layer between a guest that escaped its QEMU and the host: on or off here, and why (`vmfork doctor`). */
export interface ConfinementLayer {
  layer: 'cgroups' | 'qemu-user' | 'sandbox' | 'chroot';
  on: boolean;
  why: string;
  /** What to do to turn it on; null when it is on. */
  fix: string | null;
}

export interface ConfinementOptions {
  /** The cgroup fs to probe (tests pass a fake mount table). */
  cgroups?: CgroupSys;
}

type Probe = (o: ConfinementOptions) => Promise<ConfinementLayer>;

/**
 * Every layer's probe, in the order doctor prints them. Each layer owns its entry: the QEMU user, sandbox and
 * chroot entries say "not yet" until their layer lands and replaces its probe here.
 */
export const CONFINEMENT_PROBES: readonly Probe[] = [
  async (o) => {
    const r = await probeCgroups(o.cgroups);
    return { layer: 'cgroups', ...r, fix: r.on ? null : 'run as root where cgroup v1 or v2 offers memory, cpu and pids (or set VMFORK_CGROUP_PARENT to a delegated subtree)' };
  },
  () => Promise.resolve({ layer: 'qemu-user', on: false, why: 'QEMU runs as the user running vmfork (no unprivileged QEMU user yet)', fix: 'not available in this build' }),
  () => Promise.resolve({ layer: 'sandbox', on: false, why: 'QEMU runs without -sandbox (seccomp filter not in place yet)', fix: 'not available in this build' }),
  () => Promise.resolve({ layer: 'chroot', on: false, why: 'QEMU runs without -chroot (not in place yet)', fix: 'not available in this build' }),
];

/** Each confinement layer as it stands on this host. Never throws: a probe that fails says off and why. */
export async function confinementLayers(options: ConfinementOptions = {}): Promise<ConfinementLayer[]> {
  return Promise.all(CONFINEMENT_PROBES.map((p) => p(options)));
}
