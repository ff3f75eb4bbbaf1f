import { VmforkError } from '../errors.js';
import { shQuote } from '../util/index.js';

/**
 * Phase 1's disk layout, applied once to the internal clone through the guest agent:
 * - the **disposable** disk (`/dev/disk/by-id/virtio-disposable`): a swap partition of `swapBytes`, the rest ext4
 *   mounted on /tmp (1777);
 * - for persistent pools, the **user-data** disk (`/dev/disk/by-id/virtio-userdata`): one ext4 partition that
 *   becomes /home, seeded with what /home held.
 * Everything goes into /etc/fstab by UUID (device names follow PCI order; UUIDs follow the data). The script is
 * idempotent — a disk already partitioned and formatted is left as it is — so it may run again after a reboot.
 */
export interface DiskLayout {
  disposableBytes: number;
  swapBytes: number;
  /** Present for persistent pools only. */
  userDataBytes?: number;
}

/** Device ids (and virtio serials) of phase 1's disks on the internal clone, the replica and every child. */
export const USER_DATA_DISK = 'userdata';
export const DISPOSABLE_DISK = 'disposable';

const MiB = 1024 * 1024;

/** The data disks the internal clone boots with, in device order after the system disk. */
export function dataDisks(layout: DiskLayout): { id: string; sizeBytes: number }[] {
  return [
    ...(layout.userDataBytes !== undefined ? [{ id: USER_DATA_DISK, sizeBytes: layout.userDataBytes }] : []),
    { id: DISPOSABLE_DISK, sizeBytes: layout.disposableBytes },
  ];
}

/** Refuses a layout that cannot be partitioned: swap must leave at least 16 MiB of /tmp on the disposable disk. */
export function checkDiskLayout(layout: DiskLayout): void {
  const swapMiB = Math.floor(layout.swapBytes / MiB);
  if (swapMiB < 1 || layout.disposableBytes - layout.swapBytes < 16 * MiB) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `disks.swap (${swapMiB} MiB) must be at least 1 MiB and leave 16 MiB of disks.disposable for /tmp`, {
      details: { field: 'disks.swap' },
    });
  }
}

/** The guest script (POSIX sh, run as root by the agent) that lays the disks out; prints `@@fact key=value` lines. */
export function diskScript(layout: DiskLayout): string {
  checkDiskLayout(layout);
  const swapMiB = Math.floor(layout.swapBytes / MiB);
  const persistent = layout.userDataBytes !== undefined;
  return [
    'set -eu',
    'PATH=/usr/sbin:/usr/bin:/sbin:/bin',
    "fact() { printf '@@fact %s=%s\\n' \"$1\" \"$2\"; }",
    // udev creates the by-id links a moment after the devices appear
    'wait_dev() { i=0; while [ ! -e "$1" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; [ -e "$1" ] || { echo "no $1" >&2; exit 3; }; }',
    'uuid() { blkid -s UUID -o value "$1"; }',
    // one fstab line per mount point or swap device, replaced when it is already there
    'fstab() { grep -v "[[:space:]]$2[[:space:]]" /etc/fstab > /etc/fstab.vmfork || :; printf "UUID=%s %s %s\\n" "$1" "$2" "$3" >> /etc/fstab.vmfork; mv /etc/fstab.vmfork /etc/fstab; }',
    `dd=/dev/disk/by-id/virtio-${DISPOSABLE_DISK}`,
    'wait_dev "$dd"',
    'if ! blkid "$dd-part1" > /dev/null 2>&1; then',
    `  printf 'label: gpt\\n,%sM,S\\n,,L\\n' ${shQuote(String(swapMiB))} | sfdisk --quiet --wipe always "$dd"`,
    '  udevadm settle; wait_dev "$dd-part2"',
    '  mkswap -L vmf-swap "$dd-part1" > /dev/null',
    '  mkfs.ext4 -q -L vmf-tmp "$dd-part2"',
    'fi',
    'fstab "$(uuid "$dd-part1")" none "swap sw 0 0"',
    'fstab "$(uuid "$dd-part2")" /tmp "ext4 defaults,nosuid,nodev 0 2"',
    ...(persistent
      ? [
          `ud=/dev/disk/by-id/virtio-${USER_DATA_DISK}`,
          'wait_dev "$ud"',
          'if ! blkid "$ud-part1" > /dev/null 2>&1; then',
          "  printf 'label: gpt\\n,,L\\n' | sfdisk --quiet --wipe always \"$ud\"",
          '  udevadm settle; wait_dev "$ud-part1"',
          '  mkfs.ext4 -q -L vmf-home "$ud-part1"',
          // /home's current contents move onto the new disk before it is mounted over them
          '  mkdir -p /mnt/vmf-home; mount "$ud-part1" /mnt/vmf-home; cp -a /home/. /mnt/vmf-home/; umount /mnt/vmf-home; rmdir /mnt/vmf-home',
          'fi',
          'fstab "$(uuid "$ud-part1")" /home "ext4 defaults 0 2"',
          'findmnt -n /home > /dev/null || mount /home',
        ]
      : []),
    'findmnt -n /tmp > /dev/null || mount /tmp',
    'chmod 1777 /tmp',
    'swapon --show=NAME --noheadings | grep -q . || swapon -a',
    'fact home "$(findmnt -n -o SOURCE /home || echo root)"',
    'fact tmp "$(findmnt -n -o SOURCE /tmp)"',
    'fact swap "$(swapon --show=NAME --noheadings | tr \'\\n\' \' \')"',
    'sync',
  ].join('\n');
}

/** `@@fact key=value` lines of a phase-1 script's output. */
export function parseFacts(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const m = /^@@fact ([a-z-]+)=(.*)$/.exec(line.trim());
    if (m?.[1]) out[m[1]] = (m[2] ?? '').trim();
  }
  return out;
}
