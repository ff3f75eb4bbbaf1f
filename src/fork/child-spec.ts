import { VmforkError } from '../errors.js';
import type { Lease } from '../network/index.js';
import { layoutDifferences } from '../qemu/index.js';
import { parseVmSpec, type VmSpec } from '../spec/index.js';
import type { ReadyTemplate } from '../template/index.js';
import { diskFile, vmChannels, type VmPaths } from '../vm/index.js';

/**
 * A child's spec: the template's devices, with its own overlay, MAC, tap, vmgenid, uuid and sockets, and the
 * template's RAM file mapped MAP_PRIVATE. Parsed here, once per child; refused (VMFORK_TEMPLATE_MISMATCH) if its
 * device layout would differ from the template's in any way the device state depends on.
 */
export function childSpec(t: ReadyTemplate, name: string, paths: VmPaths, lease: Pick<Lease, 'mac' | 'tap'>, options: { lazy?: boolean } = {}): VmSpec {
  const base = t.spec;
  // a lazy child (src/fork/lazy.ts): its RAM arrives by postcopy from another host, its disks are read from there
  // through overlays that keep what they read; it has no state file to load
  const lazy = options.lazy === true;
  const spec = parseVmSpec({
    name,
    accel: base.accel,
    ...(base.tbSizeMiB !== undefined ? { tbSizeMiB: base.tbSizeMiB } : {}),
    machine: base.machine,
    cpuModel: base.cpuModel,
    cpus: base.cpus,
    memoryMiB: base.memoryMiB,
    // share=off: MAP_PRIVATE over the template's RAM file — pages are shared until the child writes them
    memory: lazy ? { kind: 'ram' } : { kind: 'file', path: t.record.files.ram.path, share: false },
    // no -kernel: the guest is already running; 8 MiB less per child (a reboot would need a bootloader on disk)
    // an overlay per template disk, named by device id in the child's directory
    disks: base.disks.map((d) => ({ ...d, path: diskFile(paths.dir, d.id), ...(lazy ? { copyOnRead: true } : {}) })),
    nics: base.nics.map((n) => ({ id: n.id, mac: lease.mac, backend: { kind: 'tap' as const, ifname: lease.tap } })),
    // a new vmgenid guid makes the guest kernel reseed its CRNG on resume; vmfork-guest's port if the template has
    // it; the template's VGA device (guest-visible) with the child's own VNC socket if it has one
    ...vmChannels(paths, { vmforkAgent: base.vmforkAgentSocket !== undefined, screen: base.vga }),
    incoming: 'defer',
    ...(lazy ? {} : { incomingState: t.record.files.state.path }),
  });
  // the RAM block keeps its name (`mem`) whatever backs it: a lazy child's anonymous RAM takes the stream's pages
  const diffs = layoutDifferences(base, spec).filter((d) => !(lazy && d.startsWith('memoryKind:')));
  if (diffs.length) {
    throw new VmforkError('VMFORK_TEMPLATE_MISMATCH', `child ${name} would not match template ${t.row.name}: ${diffs.join('; ')}`, { details: { diffs } });
  }
  return spec;
}
