/**
 * Shapes of `vmfork verify`. Every fact about a child is read from the guest (agent), from QEMU (QMP) or by a
 * real client on the child's network (ping, ssh-keyscan) — never copied from vmfork's own records. The one
 * recorded value used is the template's boot_id, itself read from the parent guest when the template was frozen.
 */

/** Where a fact is read from; names the source of a collection failure. */
export type FactSource =
  /** one guest-exec of GUEST_SCRIPT through qemu-ga */
  | 'guest'
  /** `query-rx-filter` on the child's QMP socket */
  | 'qmp'
  /** `ip netns identify <QEMU pid>`: the namespace the child's QEMU (and so its tap) really lives in */
  | 'netns'
  /** `ssh-keyscan` inside that namespace + `ssh-keygen -lf -` on the host */
  | 'ssh'
  /** `ping -c1` inside that namespace */
  | 'ping';

export interface SshHostKey {
  /** As ssh-keygen prints it: `ED25519`, `ECDSA`, … */
  type: string;
  /** `SHA256:…` */
  fingerprint: string;
  bits: number;
}

export interface CollectionError {
  source: FactSource;
  code: string;
  message: string;
}

/** What one running child reports about itself. `null` = could not be read (see `errors`). */
export interface ChildFacts {
  name: string;
  template: string | null;
  /** Namespace of the QEMU process, read from the kernel. */
  netns: string | null;
  hostname: string | null;
  /** /sys/class/net/eth0/address in the guest. */
  mac: string | null;
  /** `main-mac` of the NIC as QEMU sees it (the address the virtio-net device filters on). */
  qemuMac: string | null;
  ipv4: string | null;
  ipv6LinkLocal: string | null;
  /** Flags iproute2 prints after `scope link`, e.g. `dadfailed`, `tentative`. */
  ipv6Flags: string[];
  machineId: string | null;
  bootId: string | null;
  /** The template's boot_id as recorded when it was frozen; null for a VM that is not a child. */
  templateBootId: string | null;
  bootIdMatchesTemplate: boolean | null;
  /** 0 when the boot_id equals the template's; unknown (null) otherwise — a changed boot_id says "at least one". */
  reboots: 0 | null;
  /** 32 bytes of the guest's /dev/urandom, hex. */
  urandom: string | null;
  /** Guest wall clock minus host wall clock, ± clockUncertaintyMs (half the exec round trip). */
  clockOffsetMs: number | null;
  clockUncertaintyMs: number | null;
  sshHostKeys: SshHostKey[];
  reachable: boolean | null;
  pingRttMs: number | null;
  /** Host-side time spent collecting this child, and per source (sources run partly in parallel). */
  collectMs: number;
  sourceMs: Partial<Record<FactSource, number>>;
  errors: CollectionError[];
}

/** Fields compared across children. `sshHostKey` compares every fingerprint of every child. */
export const COLLISION_FIELDS = ['hostname', 'mac', 'qemuMac', 'ipv4', 'ipv6LinkLocal', 'machineId', 'sshHostKey', 'urandom'] as const;
export type CollisionField = (typeof COLLISION_FIELDS)[number];

/** One value shared by two or more children (a three-way collision is one entry naming three children). */
export interface Collision {
  field: CollisionField;
  value: string;
  children: string[];
}

export type ProblemKind =
  /** a source could not be read (agent down, QMP busy, …) */
  | 'collection-failed'
  /** a source answered but a value that must exist was absent (no eth0, no IPv4, …) */
  | 'missing-value'
  /** the guest's eth0 MAC differs from QEMU's main-mac: frames would be dropped or sent from the wrong address */
  | 'mac-mismatch'
  /** boot_id differs from the template's: the child booted instead of resuming */
  | 'rebooted'
  | 'clock-offset'
  | 'unreachable'
  | 'missing-ssh-host-key'
  /** the guest kernel's own duplicate address detection found its link-local address in use on the bridge */
  | 'ipv6-dad-failed';

export interface Problem {
  child: string;
  kind: ProblemKind;
  detail: string;
}

export interface SkippedVm {
  name: string;
  state: string;
}

export interface VerifyReport {
  /** `--template` when given, else null. */
  template: string | null;
  checkedAt: string;
  wallMs: number;
  children: ChildFacts[];
  skipped: SkippedVm[];
  collisions: Collision[];
  problems: Problem[];
  /** No collision and no problem. */
  ok: boolean;
}
