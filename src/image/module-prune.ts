import { readFile, readdir, rm, rmdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';

/**
 * One pruning rule over module paths relative to `/lib/modules/<ver>/kernel/`. `path` ending in `/` is a
 * directory prefix; otherwise it names one module file without its `.ko` suffix. The longest matching rule wins;
 * a module no rule matches is kept (arch/, crypto/, lib/, block/, mm/ … are small and generic).
 */
export interface PruneRule {
  path: string;
  keep: boolean;
}

const drop = (path: string): PruneRule => ({ path, keep: false });
const keep = (path: string): PruneRule => ({ path, keep: true });

/**
 * What a guest on QEMU's virtio devices can use. Everything for real hardware (GPUs, sound, wireless, USB, HID,
 * InfiniBand, media, staging, SCSI HBAs, NICs) is dropped; what later customization may need (9p host shares,
 * vsock, overlayfs, netfilter, bridges, vfat/iso for seed disks) is kept. Dependencies of kept modules are pulled
 * back in by `planPrune`, so this list never has to name them.
 */
export const MODULE_PRUNE_RULES: readonly PruneRule[] = [
  drop('drivers/'),
  keep('drivers/virtio/'),
  keep('drivers/block/virtio_blk'),
  keep('drivers/block/loop'),
  keep('drivers/net/virtio_net'),
  keep('drivers/net/net_failover'),
  keep('drivers/net/tun'),
  keep('drivers/net/veth'),
  keep('drivers/net/dummy'),
  keep('drivers/net/macvlan'),
  keep('drivers/char/virtio_console'),
  keep('drivers/char/hw_random/virtio-rng'),
  keep('drivers/scsi/virtio_scsi'),
  keep('drivers/scsi/sd_mod'),
  keep('drivers/scsi/sr_mod'),
  // ACPI button: QMP system_powerdown must reach logind as a power-button press
  keep('drivers/acpi/button'),
  keep('drivers/input/evdev'),
  keep('drivers/firmware/qemu_fw_cfg'),
  keep('drivers/ptp/ptp_kvm'),
  keep('drivers/watchdog/i6300esb'),
  keep('drivers/watchdog/softdog'),
  keep('drivers/pci/hotplug/'),
  drop('sound/'),
  drop('arch/x86/kvm/'),
  drop('virt/'),
  drop('net/'),
  ...['core', 'ipv4', 'ipv6', 'packet', 'unix', 'netfilter', 'bridge', '8021q', '802', 'llc', 'sched', 'vmw_vsock', '9p', 'xfrm', 'key', 'tls'].map(
    (d) => keep(`net/${d}/`),
  ),
  // transports for other hypervisors would drag in Hyper-V, VMCI, Xen and RDMA stacks
  ...['9p/9pnet_rdma', '9p/9pnet_xen', 'vmw_vsock/hv_sock', 'vmw_vsock/vmw_vsock_vmci_transport'].map((m) => drop(`net/${m}`)),
  drop('fs/'),
  // autofs: systemd mounts binfmt_misc through an automount point and warns at every boot without it
  ...['ext4', 'jbd2', 'fat', 'overlayfs', 'fuse', '9p', 'isofs', 'netfs', 'fscache', 'autofs'].map((d) => keep(`fs/${d}/`)),
  ...['nls_utf8', 'nls_cp437', 'nls_ascii', 'nls_iso8859-1'].map((m) => keep(`fs/nls/${m}`)),
  keep('fs/mbcache'),
  keep('fs/binfmt_misc'),
];

/** Modules the initramfs loads (MODULES=list); pruning must never remove them. */
export const INITRAMFS_MODULES = ['virtio_pci', 'virtio_blk', 'virtio_net', 'virtio_console', 'ext4'] as const;

const KO_SUFFIX = /\.ko(\.xz|\.zst|\.gz)?$/;

/** The module name modprobe uses: file name without suffix, `-` and `_` equivalent. */
export function moduleName(path: string): string {
  return basename(path).replace(KO_SUFFIX, '').replace(/-/g, '_');
}

/** Whether `rules` keep the module at `path` (as written in modules.dep: `kernel/drivers/...ko`). */
export function ruleKeeps(path: string, rules: readonly PruneRule[] = MODULE_PRUNE_RULES): boolean {
  const rel = path.replace(/^kernel\//, '');
  const bare = rel.replace(KO_SUFFIX, '');
  let best: PruneRule | undefined;
  for (const r of rules) {
    const hit = r.path.endsWith('/') ? rel.startsWith(r.path) : bare === r.path;
    if (hit && (!best || r.path.length > best.path.length)) best = r;
  }
  return best?.keep ?? true;
}

/** Parses modules.dep into module path → its dependencies' paths. */
export function parseModulesDep(text: string): Map<string, string[]> {
  const deps = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    deps.set(line.slice(0, i).trim(), line.slice(i + 1).split(/\s+/).filter(Boolean));
  }
  return deps;
}

export interface PrunePlan {
  keep: string[];
  drop: string[];
  /** Required module names that are neither in modules.dep nor kept (a broken recipe). */
  missingRequired: string[];
}

/**
 * Decides which modules stay: those the rules keep, the required ones, and every dependency of those, transitively
 * (a kept module whose dependency was pruned could not load). Paths are as in modules.dep.
 */
export function planPrune(modulesDep: string, rules: readonly PruneRule[] = MODULE_PRUNE_RULES, required: readonly string[] = INITRAMFS_MODULES): PrunePlan {
  const deps = parseModulesDep(modulesDep);
  const byName = new Map([...deps.keys()].map((p) => [moduleName(p), p]));
  const kept = new Set<string>();
  const pending: string[] = [];
  const add = (p: string): void => {
    if (!kept.has(p)) {
      kept.add(p);
      pending.push(p);
    }
  };
  for (const p of deps.keys()) if (ruleKeeps(p, rules)) add(p);
  const missingRequired: string[] = [];
  for (const name of required) {
    const p = byName.get(name.replace(/-/g, '_'));
    if (p) add(p);
    else missingRequired.push(name); // may be built in; the caller checks modules.builtin
  }
  for (let p = pending.pop(); p !== undefined; p = pending.pop()) {
    for (const d of deps.get(p) ?? []) add(d);
  }
  const all = [...deps.keys()];
  return { keep: all.filter((p) => kept.has(p)).sort(), drop: all.filter((p) => !kept.has(p)).sort(), missingRequired };
}

export interface PruneResult {
  kept: number;
  dropped: number;
  bytesBefore: number;
  bytesAfter: number;
}

/**
 * Applies `planPrune` to `<rootfs>/lib/modules/<version>`: deletes the dropped module files and the directories
 * left empty. The caller must run `depmod` in the rootfs afterwards so modules.dep/alias match what is left.
 */
export async function pruneModules(rootfs: string, version: string, rules: readonly PruneRule[] = MODULE_PRUNE_RULES): Promise<PruneResult & { plan: PrunePlan }> {
  const dir = join(rootfs, 'lib', 'modules', version);
  const plan = planPrune(await readFile(join(dir, 'modules.dep'), 'utf8'), rules);
  const builtin = new Set((await readFile(join(dir, 'modules.builtin'), 'utf8')).split('\n').filter(Boolean).map(moduleName));
  plan.missingRequired = plan.missingRequired.filter((n) => !builtin.has(n.replace(/-/g, '_')));
  const sizeOf = async (rel: string): Promise<number> => (await stat(join(dir, rel))).size;
  let bytesAfter = 0;
  for (const p of plan.keep) bytesAfter += await sizeOf(p);
  let bytesDropped = 0;
  for (const p of plan.drop) {
    bytesDropped += await sizeOf(p);
    await rm(join(dir, p));
  }
  await removeEmptyDirs(join(dir, 'kernel'));
  return { plan, kept: plan.keep.length, dropped: plan.drop.length, bytesBefore: bytesAfter + bytesDropped, bytesAfter };
}

/** Removes empty directories below (not including) `dir`; returns whether `dir` itself ended up empty. */
async function removeEmptyDirs(dir: string): Promise<boolean> {
  let empty = true;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory() && (await removeEmptyDirs(join(dir, e.name)))) {
      await rmdir(join(dir, e.name));
    } else {
      empty = false;
    }
  }
  return empty;
}
