import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as qemu from '../../src/qemu/qemu-argv.js';
import { parseVmSpec, type VmSpecInput } from '../../src/spec/vm-spec.js';

const { escapeOptionValue } = qemu;
// the builder takes parsed specs; these tests write inputs, as the planners do before their one parse
const buildQemuArgv = (s: VmSpecInput): string[] => qemu.buildQemuArgv(parseVmSpec(s));
const deviceLayoutOf = (s: VmSpecInput): string => qemu.deviceLayoutOf(parseVmSpec(s));
const deviceLayoutHash = (s: VmSpecInput): string => qemu.deviceLayoutHash(parseVmSpec(s));
const layoutDifferences = (a: VmSpecInput, b: VmSpecInput): string[] => qemu.layoutDifferences(parseVmSpec(a), parseVmSpec(b));

const VM = '/var/lib/vmfork/vms';

const coldBoot: VmSpecInput = {
  name: 'web1',
  accel: 'tcg',
  tbSizeMiB: 64,
  cpus: 1,
  memoryMiB: 512,
  kernel: { kernel: '/img/vmlinuz', initrd: '/img/initrd.img', cmdline: 'root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet' },
  disks: [{ id: 'disk0', path: `${VM}/web1/disk.qcow2`, format: 'qcow2' }],
  nics: [{ id: 'net0', mac: '52:54:00:AA:00:01', backend: { kind: 'user' } }],
  agentSocket: `${VM}/web1/agent.sock`,
  qmpSocket: `${VM}/web1/qmp.sock`,
  serialLog: `${VM}/web1/serial.log`,
  pidfile: `${VM}/web1/qemu.pid`,
};

const template: VmSpecInput = {
  name: 't1',
  accel: 'tcg',
  tbSizeMiB: 32,
  memoryMiB: 512,
  memory: { kind: 'file', path: '/dev/shm/vmfork-t1.mem', share: true },
  kernel: { kernel: '/img/vmlinuz', cmdline: 'root=/dev/vda rw console=ttyS0' },
  disks: [{ id: 'disk0', path: `${VM}/t1/disk.qcow2`, format: 'qcow2' }],
  nics: [{ id: 'net0', mac: '52:54:00:12:00:00', backend: { kind: 'tap', ifname: 'vmf-t1' } }],
  agentSocket: `${VM}/t1/agent.sock`,
  qmpSocket: `${VM}/t1/qmp.sock`,
  serialLog: `${VM}/t1/serial.log`,
  pidfile: `${VM}/t1/qemu.pid`,
  vmgenid: '8f3b6a52-6f0e-4b4e-9a1e-4b5ad8d5b1c1',
  uuid: '11111111-2222-4333-8444-555555555555',
};

const child: VmSpecInput = {
  ...template,
  name: 'c1',
  tbSizeMiB: 16,
  memory: { kind: 'file', path: '/dev/shm/vmfork-t1.mem', share: false },
  kernel: undefined,
  disks: [{ id: 'disk0', path: `${VM}/c1/disk.qcow2`, format: 'qcow2' }],
  nics: [{ id: 'net0', mac: '52:54:00:12:00:07', backend: { kind: 'tap', ifname: 'vmf-c1' } }],
  agentSocket: `${VM}/c1/agent.sock`,
  qmpSocket: `${VM}/c1/qmp.sock`,
  serialLog: `${VM}/c1/serial.log`,
  pidfile: `${VM}/c1/qemu.pid`,
  vmgenid: '0a4c9d1e-58b3-4f6a-b2c7-3e9d8f1a2b3c',
  uuid: '99999999-2222-4333-8444-555555555555',
  incoming: 'defer',
};

test('cold boot argv', () => {
  assert.deepEqual(buildQemuArgv(coldBoot), [
    '-name', 'web1', '-nodefaults', '-no-user-config', '-display', 'none',
    '-machine', 'q35',
    '-accel', 'tcg,tb-size=64',
    '-cpu', 'max', '-smp', '1', '-m', '512M',
    '-kernel', '/img/vmlinuz', '-initrd', '/img/initrd.img', '-append', 'root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet',
    '-drive', `if=none,id=disk0,file=${VM}/web1/disk.qcow2,format=qcow2,cache=writeback`,
    '-device', 'virtio-blk-pci,drive=disk0,id=disk0-blk',
    '-netdev', 'user,id=net0,restrict=on', '-device', 'virtio-net-pci,netdev=net0,mac=52:54:00:aa:00:01,id=net0-nic',
    '-device', 'virtio-serial-pci,id=vserial0',
    '-chardev', `socket,id=agent0,path=${VM}/web1/agent.sock,server=on,wait=off`,
    '-device', 'virtserialport,bus=vserial0.0,chardev=agent0,name=org.qemu.guest_agent.0,id=agent0-port',
    '-qmp', `unix:${VM}/web1/qmp.sock,server=on,wait=off`,
    '-serial', `file:${VM}/web1/serial.log`,
    '-pidfile', `${VM}/web1/qemu.pid`,
  ]);
});

test('template argv: file-backed shared RAM, tap, vmgenid, uuid', () => {
  assert.deepEqual(buildQemuArgv(template), [
    '-name', 't1', '-nodefaults', '-no-user-config', '-display', 'none',
    '-machine', 'q35,memory-backend=mem',
    '-accel', 'tcg,tb-size=32',
    '-cpu', 'max', '-smp', '1', '-m', '512M',
    '-object', 'memory-backend-file,id=mem,size=512M,mem-path=/dev/shm/vmfork-t1.mem,share=on',
    '-uuid', '11111111-2222-4333-8444-555555555555',
    '-kernel', '/img/vmlinuz', '-append', 'root=/dev/vda rw console=ttyS0',
    '-drive', `if=none,id=disk0,file=${VM}/t1/disk.qcow2,format=qcow2,cache=writeback`,
    '-device', 'virtio-blk-pci,drive=disk0,id=disk0-blk',
    '-netdev', 'tap,id=net0,ifname=vmf-t1,script=no,downscript=no',
    '-device', 'virtio-net-pci,netdev=net0,mac=52:54:00:12:00:00,id=net0-nic',
    '-device', 'virtio-serial-pci,id=vserial0',
    '-chardev', `socket,id=agent0,path=${VM}/t1/agent.sock,server=on,wait=off`,
    '-device', 'virtserialport,bus=vserial0.0,chardev=agent0,name=org.qemu.guest_agent.0,id=agent0-port',
    '-device', 'vmgenid,guid=8f3b6a52-6f0e-4b4e-9a1e-4b5ad8d5b1c1,id=vmgenid0',
    '-qmp', `unix:${VM}/t1/qmp.sock,server=on,wait=off`,
    '-serial', `file:${VM}/t1/serial.log`,
    '-pidfile', `${VM}/t1/qemu.pid`,
  ]);
});

test('child argv: private mapping of the same RAM file, no kernel, -incoming defer', () => {
  assert.deepEqual(buildQemuArgv(child), [
    '-name', 'c1', '-nodefaults', '-no-user-config', '-display', 'none',
    '-machine', 'q35,memory-backend=mem',
    '-accel', 'tcg,tb-size=16',
    '-cpu', 'max', '-smp', '1', '-m', '512M',
    '-object', 'memory-backend-file,id=mem,size=512M,mem-path=/dev/shm/vmfork-t1.mem,share=off',
    '-uuid', '99999999-2222-4333-8444-555555555555',
    '-drive', `if=none,id=disk0,file=${VM}/c1/disk.qcow2,format=qcow2,cache=writeback`,
    '-device', 'virtio-blk-pci,drive=disk0,id=disk0-blk',
    '-netdev', 'tap,id=net0,ifname=vmf-c1,script=no,downscript=no',
    '-device', 'virtio-net-pci,netdev=net0,mac=52:54:00:12:00:07,id=net0-nic',
    '-device', 'virtio-serial-pci,id=vserial0',
    '-chardev', `socket,id=agent0,path=${VM}/c1/agent.sock,server=on,wait=off`,
    '-device', 'virtserialport,bus=vserial0.0,chardev=agent0,name=org.qemu.guest_agent.0,id=agent0-port',
    '-device', 'vmgenid,guid=0a4c9d1e-58b3-4f6a-b2c7-3e9d8f1a2b3c,id=vmgenid0',
    '-qmp', `unix:${VM}/c1/qmp.sock,server=on,wait=off`,
    '-serial', `file:${VM}/c1/serial.log`,
    '-pidfile', `${VM}/c1/qemu.pid`,
    '-incoming', 'defer',
  ]);
});

test('lazy child argv: anonymous RAM under the template file\'s backend id, disks copied on read; the same device layout but for the RAM\'s kind', () => {
  const lazy: VmSpecInput = { ...child, memory: { kind: 'ram' }, disks: [{ id: 'disk0', path: `${VM}/c1/disk.qcow2`, format: 'qcow2', copyOnRead: true }] };
  const argv = buildQemuArgv(lazy);
  assert.deepEqual(argv.slice(argv.indexOf('-machine'), argv.indexOf('-machine') + 2), ['-machine', 'q35,memory-backend=mem']);
  assert.ok(argv.includes('memory-backend-ram,id=mem,size=512M'));
  assert.ok(!argv.some((a) => a.startsWith('memory-backend-file')));
  assert.ok(argv.includes(`if=none,id=disk0,file=${VM}/c1/disk.qcow2,format=qcow2,cache=writeback,copy-on-read=on`));
  assert.deepEqual(layoutDifferences(child, lazy), ['memoryKind: "file" ≠ "ram"'], 'copy-on-read is not guest-visible; the RAM kind is all that differs');
});

test('KVM gets -accel kvm and -cpu host; read-only disks say so', () => {
  const argv = buildQemuArgv({ ...coldBoot, accel: 'kvm', tbSizeMiB: undefined, disks: [{ id: 'seed', path: '/img/seed.raw', format: 'raw', readOnly: true, cache: 'none' }] });
  assert.deepEqual(argv.slice(argv.indexOf('-accel'), argv.indexOf('-accel') + 4), ['-accel', 'kvm', '-cpu', 'host']);
  assert.ok(argv.includes('if=none,id=seed,file=/img/seed.raw,format=raw,cache=none,readonly=on'));
});

test('commas in paths are doubled inside option strings and kept verbatim where QEMU takes the raw value', () => {
  assert.equal(escapeOptionValue('/a,b,,c'), '/a,,b,,,,c');
  const dir = '/tmp/a,b';
  const argv = buildQemuArgv({
    ...template,
    memory: { kind: 'file', path: `${dir}/t.mem`, share: true },
    kernel: { kernel: `${dir}/vmlinuz`, cmdline: 'console=ttyS0,115200' },
    disks: [{ id: 'disk0', path: `${dir}/d.qcow2`, format: 'qcow2' }],
    agentSocket: `${dir}/agent.sock`,
    qmpSocket: `${dir}/qmp.sock`,
    serialLog: `${dir}/serial.log`,
    pidfile: `${dir}/qemu.pid`,
  });
  assert.ok(argv.includes('memory-backend-file,id=mem,size=512M,mem-path=/tmp/a,,b/t.mem,share=on'));
  assert.ok(argv.includes('if=none,id=disk0,file=/tmp/a,,b/d.qcow2,format=qcow2,cache=writeback'));
  assert.ok(argv.includes('socket,id=agent0,path=/tmp/a,,b/agent.sock,server=on,wait=off'));
  assert.ok(argv.includes('unix:/tmp/a,,b/qmp.sock,server=on,wait=off'));
  // measured on QEMU 7.2: these three take the value as-is
  assert.ok(argv.includes('file:/tmp/a,b/serial.log'));
  assert.ok(argv.includes('/tmp/a,b/qemu.pid'));
  assert.ok(argv.includes('/tmp/a,b/vmlinuz'));
  assert.ok(argv.includes('console=ttyS0,115200'));
});

test('paths with newlines and relative paths are rejected', () => {
  assert.throws(() => buildQemuArgv({ ...coldBoot, qmpSocket: '/tmp/x\n-device evil' }), { code: 'VMFORK_INVALID_ARGUMENT', message: /qmpSocket: must not contain newlines/ });
  assert.throws(() => buildQemuArgv({ ...coldBoot, disks: [{ id: 'disk0', path: 'rel/d.qcow2', format: 'qcow2' }] }), { message: /disks\.0\.path: must be an absolute path/ });
});

test('template and child share one device layout though every per-VM value differs', () => {
  assert.equal(deviceLayoutOf(template), deviceLayoutOf(child));
  assert.equal(deviceLayoutHash(template), deviceLayoutHash(child));
  assert.match(deviceLayoutHash(template), /^[0-9a-f]{64}$/);
  assert.deepEqual(layoutDifferences(template, child), []);
});

test('a different device, device order, memory size or CPU model changes the layout', () => {
  const variants: [string, VmSpecInput][] = [
    ['extra disk', { ...child, disks: [...(child.disks ?? []), { id: 'disk1', path: '/x/d1.qcow2', format: 'qcow2' }] }],
    ['renamed nic', { ...child, nics: [{ id: 'eth0', mac: '52:54:00:12:00:07', backend: { kind: 'tap', ifname: 'vmf-c1' } }] }],
    ['no agent', { ...child, agentSocket: undefined }],
    ['no vmgenid', { ...child, vmgenid: undefined }],
    ['memory', { ...child, memoryMiB: 1024, memory: { kind: 'file', path: '/dev/shm/vmfork-t1.mem', share: false } }],
    ['anonymous RAM', { ...child, memory: { kind: 'anonymous' } }],
    ['cpu model', { ...child, cpuModel: 'qemu64' }],
    ['cpus', { ...child, cpus: 2 }],
    ['read-only disk', { ...child, disks: [{ id: 'disk0', path: `${VM}/c1/disk.qcow2`, format: 'qcow2', readOnly: true }] }],
  ];
  for (const [what, spec] of variants) {
    assert.notEqual(deviceLayoutOf(spec), deviceLayoutOf(template), what);
    assert.ok(layoutDifferences(template, spec).length > 0, what);
  }
  const twoDisks = (a: string, b: string): VmSpecInput => ({ ...child, disks: [a, b].map((id) => ({ id, path: `/x/${id}.qcow2`, format: 'qcow2' as const })) });
  assert.notEqual(deviceLayoutOf(twoDisks('disk0', 'disk1')), deviceLayoutOf(twoDisks('disk1', 'disk0')), 'order is part of the layout');
  assert.deepEqual(layoutDifferences(template, { ...child, memoryMiB: 1024 }), ['memoryMiB: 512 ≠ 1024']);
});

test('a disk serial reaches the virtio-blk device and the layout (only when set); -no-shutdown keeps QEMU up', () => {
  const withSerial: VmSpecInput = { ...coldBoot, disks: [...(coldBoot.disks ?? []), { id: 'userdata', path: `${VM}/web1/disk-userdata.qcow2`, format: 'qcow2', serial: 'userdata' }], noShutdown: true };
  const argv = buildQemuArgv(withSerial);
  assert.ok(argv.includes('virtio-blk-pci,drive=userdata,id=userdata-blk,serial=userdata'));
  assert.ok(argv.includes('virtio-blk-pci,drive=disk0,id=disk0-blk'), 'a disk without a serial gets none');
  assert.equal(argv[argv.length - 1], '-no-shutdown');
  assert.match(deviceLayoutOf(withSerial), /"id":"userdata","readOnly":false,"cache":"writeback","serial":"userdata"/);
  // layouts recorded before serials existed still match a spec without them
  assert.doesNotMatch(deviceLayoutOf(template), /"serial":"/);
  assert.throws(() => buildQemuArgv({ ...coldBoot, disks: [{ id: 'disk0', path: '/x/d.qcow2', format: 'qcow2', serial: 'Bad Serial!' }] }), { code: 'VMFORK_INVALID_ARGUMENT' });
});

test('vmfork-guest\'s port: its own chardev and virtserialport after qemu-ga\'s, in the layout only when present', async () => {
  const { AGENT_PORT_NAME } = await import('../../src/agent/protocol.js');
  assert.equal(qemu.VMFORK_AGENT_PORT, AGENT_PORT_NAME, 'the argv builder and the agent protocol name the same port');
  const t = { ...template, vmforkAgentSocket: `${VM}/t1/vfg.sock` };
  const argv = buildQemuArgv(t);
  const at = argv.indexOf('-chardev');
  assert.deepEqual(argv.slice(at - 2, at + 8), [
    '-device', 'virtio-serial-pci,id=vserial0',
    '-chardev', `socket,id=agent0,path=${VM}/t1/agent.sock,server=on,wait=off`,
    '-device', 'virtserialport,bus=vserial0.0,chardev=agent0,name=org.qemu.guest_agent.0,id=agent0-port',
    '-chardev', `socket,id=vfg0,path=${VM}/t1/vfg.sock,server=on,wait=off`,
    '-device', 'virtserialport,bus=vserial0.0,chardev=vfg0,name=org.vmfork.guest.0,id=vfg0-port',
  ]);
  // a spec without the port keeps the layout templates cut before the agent recorded, key for key
  assert.doesNotMatch(deviceLayoutOf(template), /vmforkAgent/);
  assert.match(deviceLayoutOf(t), /"agent":true,"vmforkAgent":true,"vmgenid":true/);
  assert.deepEqual(layoutDifferences(t, { ...child, vmforkAgentSocket: `${VM}/c1/vfg.sock` }), []);
  assert.deepEqual(layoutDifferences(t, child), ['vmforkAgent: true ≠ undefined']);
  assert.deepEqual(layoutDifferences(template, { ...child, vmforkAgentSocket: `${VM}/c1/vfg.sock` }), ['vmforkAgent: undefined ≠ true']);
  // the port alone still gets its bus
  const alone = buildQemuArgv({ ...t, agentSocket: undefined });
  assert.ok(alone.includes('virtio-serial-pci,id=vserial0') && !alone.some((a) => a.includes('agent0')));
});

test('serialSocket: the serial port on a socket chardev for the capped logger; the guest sees the same machine', () => {
  const onSocket = buildQemuArgv({ ...child, serialSocket: `${VM}/c1/serial.sock` });
  const at = onSocket.indexOf('-serial');
  assert.deepEqual(onSocket.slice(at - 2, at + 2), ['-chardev', `socket,id=serial0,path=${VM}/c1/serial.sock,server=on,wait=off`, '-serial', 'chardev:serial0']);
  assert.ok(!onSocket.some((a) => a.startsWith('file:')), 'no -serial file: beside it');
  // a template recorded with `-serial file:` still forks children that log through the socket: the backend is host-side
  assert.deepEqual(layoutDifferences(template, { ...child, serialSocket: `${VM}/c1/serial.sock` }), []);
  assert.throws(() => buildQemuArgv({ ...coldBoot, disks: [{ id: 'serial0', path: `${VM}/web1/disk.qcow2`, format: 'qcow2' }] }), /serial0/);
});

test('a screen: a VGA device last among the devices (guest-visible, in the layout) and VNC on a unix socket (not); none without', () => {
  const withScreen: VmSpecInput = { ...template, vga: { memMiB: 4 }, vncSocket: `${VM}/t1/vnc.sock` };
  const argv = buildQemuArgv(withScreen);
  const plain = buildQemuArgv(template);
  const vga = argv.indexOf('VGA,vgamem_mb=4,id=vga0');
  assert.equal(argv[vga - 1], '-device');
  assert.equal(argv.lastIndexOf('-device'), vga - 1, 'the last device: every other keeps its PCI slot');
  assert.equal(argv[argv.indexOf('-vnc') + 1], `unix:${VM}/t1/vnc.sock,share=force-shared`);
  const stripped = argv.filter((a, i) => !(a === '-vnc' || argv[i - 1] === '-vnc' || a.startsWith('VGA,') || (a === '-device' && argv[i + 1]?.startsWith('VGA,'))));
  assert.deepEqual(stripped, plain, 'the screen adds those two options and changes nothing else');
  // without a screen the command line and the layout are those of every VM before screens, key for key
  assert.ok(!plain.includes('-vnc') && !plain.some((a) => a.startsWith('VGA')));
  assert.doesNotMatch(deviceLayoutOf(template), /vga/);
  assert.match(deviceLayoutOf(withScreen), /"serial":true,"vga":4\}$/);
  // the device must be in template and child alike; the VNC socket is the child's own business
  assert.deepEqual(layoutDifferences(withScreen, { ...child, vga: { memMiB: 4 } }), []);
  assert.deepEqual(layoutDifferences(withScreen, { ...child, vga: { memMiB: 4 }, vncSocket: `${VM}/c1/vnc.sock` }), []);
  assert.deepEqual(layoutDifferences(withScreen, child), ['vga: 4 ≠ undefined']);
  assert.deepEqual(layoutDifferences(template, { ...child, vga: { memMiB: 4 } }), ['vga: undefined ≠ 4']);
  assert.throws(() => parseVmSpec({ ...template, vncSocket: `${VM}/t1/vnc.sock` }), /vncSocket: a VNC server needs a display/);
  assert.throws(() => buildQemuArgv({ ...coldBoot, disks: [{ id: 'vga0', path: `${VM}/web1/disk.qcow2`, format: 'qcow2' }] }), /vga0/);
});
