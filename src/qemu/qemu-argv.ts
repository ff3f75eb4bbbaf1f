import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { VmSpec } from '../spec/index.js';

/**
 * The one place a QEMU command line is assembled. Template parents and forked children must present the guest
 * with the identical machine — same devices, same ids, same order, hence same PCI slots (QEMU assigns slots in
 * command-line order) — or the child cannot load the parent's device state. So the order below is fixed, device
 * ids derive only from the spec's ids, and per-VM values (paths, MAC, guid, uuid) never change the shape.
 *
 * Bump LAYOUT_VERSION whenever the device part of the argv changes shape: templates recorded under an older
 * layout are then refused instead of failing obscurely inside QEMU's migration code.
 */
export const LAYOUT_VERSION = 1;

/** The guest agent's port name: qemu-guest-agent in the guest (started by udev) looks for exactly this. */
export const GUEST_AGENT_PORT = 'org.qemu.guest_agent.0';

/** vmfork-guest's own port (guest/PROTOCOL.md); its unit starts when this port appears. */
export const VMFORK_AGENT_PORT = 'org.vmfork.guest.0';

/**
 * Escapes a value inside a QEMU `key=value,key=value` option string, where a comma is written `,,`.
 * Only for such option strings: `-kernel`, `-pidfile`, `-append` and `-serial file:` take their value verbatim.
 */
export function escapeOptionValue(value: string): string {
  return value.replace(/,/g, ',,');
}

/** Builds the argv (without the program name) that runs `spec` on qemu-system-x86_64. */
export function buildQemuArgv(spec: VmSpec): string[] {
  const mem = spec.memory;
  const argv: string[] = ['-name', spec.name, '-nodefaults', '-no-user-config', '-display', 'none'];

  argv.push('-machine', mem.kind === 'anonymous' ? spec.machine : `${spec.machine},memory-backend=mem`);
  argv.push('-accel', spec.accel === 'tcg' && spec.tbSizeMiB !== undefined ? `tcg,tb-size=${spec.tbSizeMiB}` : spec.accel);
  argv.push('-cpu', spec.cpuModel, '-smp', String(spec.cpus), '-m', `${spec.memoryMiB}M`);
  if (mem.kind === 'file') {
    const share = mem.share ? 'on' : 'off';
    argv.push('-object', `memory-backend-file,id=mem,size=${spec.memoryMiB}M,mem-path=${escapeOptionValue(mem.path)},share=${share}`);
  } else if (mem.kind === 'ram') {
    argv.push('-object', `memory-backend-ram,id=mem,size=${spec.memoryMiB}M`);
  }
  if (spec.uuid) argv.push('-uuid', spec.uuid);
  if (spec.kernel) {
    argv.push('-kernel', spec.kernel.kernel);
    if (spec.kernel.initrd) argv.push('-initrd', spec.kernel.initrd);
    argv.push('-append', spec.kernel.cmdline);
  }

  for (const d of spec.disks) {
    const ro = d.readOnly ? ',readonly=on' : '';
    const cor = d.copyOnRead ? ',copy-on-read=on' : '';
    argv.push('-drive', `if=none,id=${d.id},file=${escapeOptionValue(d.path)},format=${d.format},cache=${d.cache}${ro}${cor}`);
    argv.push('-device', `virtio-blk-pci,drive=${d.id},id=${d.id}-blk${d.serial ? `,serial=${d.serial}` : ''}`);
  }
  // user-mode NICs get restrict=on: the guest reaches neither the host nor any other address
  for (const n of spec.nics) {
    const backend = n.backend.kind === 'tap' ? `tap,id=${n.id},ifname=${n.backend.ifname},script=no,downscript=no` : `user,id=${n.id},restrict=on`;
    argv.push('-netdev', backend, '-device', `virtio-net-pci,netdev=${n.id},mac=${n.mac},id=${n.id}-nic`);
  }
  if (spec.agentSocket || spec.vmforkAgentSocket) argv.push('-device', 'virtio-serial-pci,id=vserial0');
  if (spec.agentSocket) {
    argv.push('-chardev', `socket,id=agent0,path=${escapeOptionValue(spec.agentSocket)},server=on,wait=off`);
    argv.push('-device', `virtserialport,bus=vserial0.0,chardev=agent0,name=${GUEST_AGENT_PORT},id=agent0-port`);
  }
  // after qemu-ga's port: ports are numbered in creation order, and the saved device state names them by number
  if (spec.vmforkAgentSocket) {
    argv.push('-chardev', `socket,id=vfg0,path=${escapeOptionValue(spec.vmforkAgentSocket)},server=on,wait=off`);
    argv.push('-device', `virtserialport,bus=vserial0.0,chardev=vfg0,name=${VMFORK_AGENT_PORT},id=vfg0-port`);
  }
  if (spec.vmgenid) argv.push('-device', `vmgenid,guid=${spec.vmgenid},id=vmgenid0`);
  // the last device: every other one keeps the PCI slot it has in a VM without a screen
  if (spec.vga) argv.push('-device', `VGA,vgamem_mb=${spec.vga.memMiB},id=vga0`);

  // -qmp's "unix:" form is parsed as an option string (commas escaped); "-serial file:" takes the rest verbatim
  argv.push('-qmp', `unix:${escapeOptionValue(spec.qmpSocket)},server=on,wait=off`);
  // a socket read by the VM's capped logger (src/vm/serial-logger.ts says why); `file:` only for older specs
  if (spec.serialSocket) argv.push('-chardev', `socket,id=serial0,path=${escapeOptionValue(spec.serialSocket)},server=on,wait=off`, '-serial', 'chardev:serial0');
  else if (spec.serialLog) argv.push('-serial', `file:${spec.serialLog}`);
  // beside `-display none` (no local window): force-shared, so no viewer can ask QEMU to drop the others
  if (spec.vncSocket) argv.push('-vnc', `unix:${escapeOptionValue(spec.vncSocket)},share=force-shared`);
  if (spec.pidfile) argv.push('-pidfile', spec.pidfile);
  if (spec.incoming) argv.push('-incoming', spec.incoming);
  if (spec.noShutdown) argv.push('-no-shutdown');
  return argv;
}

/**
 * What a child must share with its template: machine, accelerator, CPU model and count, RAM size and kind, and
 * every device with its id, position and guest-visible settings. Per-VM values — MAC, paths, vmgenid guid, SMBIOS
 * uuid, share flag, kernel, tb-size, incoming, the VNC socket — are left out. Equal layouts mean the child's device
 * state fits.
 */
export interface DeviceLayout {
  layout: number;
  machine: string;
  accel: VmSpec['accel'];
  cpuModel: string;
  cpus: number;
  memoryMiB: number;
  memoryKind: VmSpec['memory']['kind'];
  disks: { id: string; readOnly: boolean; cache: string; serial?: string }[];
  nics: { id: string; backend: string }[];
  agent: boolean;
  /** vmfork-guest's port; present (true) only in layouts that have it, so older templates' layouts still match. */
  vmforkAgent?: true;
  vmgenid: boolean;
  serial: boolean;
  /** The VGA device's memory in MiB; present only in layouts that have one, so older templates' layouts still match. */
  vga?: number;
}

export function deviceLayout(s: VmSpec): DeviceLayout {
  // keys in a fixed literal order: the JSON form below is then canonical
  return {
    layout: LAYOUT_VERSION,
    machine: s.machine,
    accel: s.accel,
    cpuModel: s.cpuModel,
    cpus: s.cpus,
    memoryMiB: s.memoryMiB,
    memoryKind: s.memory.kind,
    // a serial is guest-visible; left out when absent so layouts recorded before serials existed still match
    disks: s.disks.map((d) => ({ id: d.id, readOnly: d.readOnly, cache: d.cache, ...(d.serial ? { serial: d.serial } : {}) })),
    nics: s.nics.map((n) => ({ id: n.id, backend: n.backend.kind })),
    agent: s.agentSocket !== undefined,
    ...(s.vmforkAgentSocket !== undefined ? { vmforkAgent: true as const } : {}),
    vmgenid: s.vmgenid !== undefined,
    serial: s.serialLog !== undefined,
    ...(s.vga !== undefined ? { vga: s.vga.memMiB } : {}),
  };
}

/** The canonical text of a spec's layout, as a template records it (`record.layout`). */
export function deviceLayoutOf(spec: VmSpec): string {
  return JSON.stringify(deviceLayout(spec));
}

/** sha256 (hex) of `deviceLayoutOf(spec)`: short enough to store and compare. */
export function deviceLayoutHash(spec: VmSpec): string {
  return createHash('sha256').update(deviceLayoutOf(spec)).digest('hex');
}

/** The layout parts in which two specs differ, e.g. `memoryMiB: 512 ≠ 1024`; empty when a fork fits. */
export function layoutDifferences(template: VmSpec, child: VmSpec): string[] {
  const a = deviceLayout(template);
  const b = deviceLayout(child);
  return ([...new Set([...Object.keys(a), ...Object.keys(b)])] as (keyof DeviceLayout)[])
    .filter((k) => !isDeepStrictEqual(a[k], b[k]))
    .map((k) => `${k}: ${JSON.stringify(a[k])} ≠ ${JSON.stringify(b[k])}`);
}
