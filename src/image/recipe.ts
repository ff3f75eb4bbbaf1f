import { createHash } from 'node:crypto';
import { DEFAULT_CMDLINE, DISABLED_UNITS, ENABLED_UNITS, GUEST_FILES, REMOVED_PATHS, TEMPLATE_HOSTNAME } from './guest-config.js';
import { INITRAMFS_MODULES, MODULE_PRUNE_RULES, type PruneRule } from './module-prune.js';

/**
 * Bump when a build step changes in a way the data below does not capture (an order change, a new step), so
 * cached images built by the old steps are not reused.
 */
export const BUILD_STEPS_VERSION = 2;

/** Everything that determines the bytes of a built image, except the mirror it was downloaded from. */
export interface ImageRecipe {
  stepsVersion: number;
  suite: string;
  variant: string;
  /** Debian packages besides the minbase set, sorted. */
  packages: string[];
  /** Size of the ext4 root filesystem (mkfs.ext4 size argument). */
  diskSize: string;
  /** qcow2 compression of the base: 250 → 87 MiB, no measurable boot-time cost under TCG (docs/image.md). */
  compressDisk: boolean;
  hostname: string;
  cmdline: string;
  initramfsModules: string[];
  pruneRules: PruneRule[];
  guestFiles: Record<string, string>;
  enabledUnits: Record<string, string>;
  disabledUnits: string[];
  removedPaths: string[];
  /** vmfork-guest, compiled from guest/ at build time; absent: an image without the agent (the script path). */
  guestAgent?: GuestAgentRecipe;
  /** Hook scripts copied to /usr/local/lib/vmfork/ (`image build --hooks DIR`). */
  hooks?: HooksRecipe;
}

/** The agent's part of a recipe: its source tree's digest (a change rebuilds the image) and what it speaks. */
export interface GuestAgentRecipe {
  sourceDigest: string;
  version: string;
  protocolVersion: number;
}

/** The hooks' part of a recipe: what was copied in (the directory's path is not part of the image). */
export interface HooksRecipe {
  digest: string;
  files: string[];
}

/** The packages of the guest (on top of debootstrap's minbase). */
export const GUEST_PACKAGES = [
  'linux-image-amd64', // the generic kernel: CONFIG_VMGENID=y (cloud's has no virt drivers → no reseed on fork)
  'systemd-sysv',
  'udev',
  'dbus',
  'qemu-guest-agent',
  'openssh-server',
  'iproute2',
  'e2fsprogs',
  'util-linux',
  'util-linux-extra', // hwclock, which qemu-ga's guest-set-time runs
  'fdisk',
  'iputils-ping',
  'kmod',
  'procps',
  'initramfs-tools',
] as const;

/**
 * The recipe's static part: everything but the trees read at build time (the agent's sources, hooks), which
 * imageRecipe() adds. Optional parts are left out of the canonical JSON when absent, so this alone hashes as the
 * image did before the agent existed.
 */
export const BASE_RECIPE: ImageRecipe = {
  stepsVersion: BUILD_STEPS_VERSION,
  suite: 'bookworm',
  variant: 'minbase',
  packages: [...GUEST_PACKAGES].sort(),
  diskSize: '2G',
  compressDisk: true,
  hostname: TEMPLATE_HOSTNAME,
  cmdline: DEFAULT_CMDLINE,
  initramfsModules: [...INITRAMFS_MODULES],
  pruneRules: [...MODULE_PRUNE_RULES],
  guestFiles: { ...GUEST_FILES },
  enabledUnits: { ...ENABLED_UNITS },
  disabledUnits: [...DISABLED_UNITS],
  removedPaths: [...REMOVED_PATHS],
};

/** JSON with object keys sorted at every level, so the hash does not depend on property order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * The cache key of a recipe: 16 hex digits of the sha256 of its canonical JSON. The package list is an
 * unordered set (sorted before hashing); everything else is order-sensitive because order matters to the build.
 */
export function recipeHash(recipe: ImageRecipe): string {
  const normalized = { ...recipe, packages: [...recipe.packages].sort() };
  return createHash('sha256').update(canonicalJson(normalized)).digest('hex').slice(0, 16);
}
