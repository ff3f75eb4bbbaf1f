import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { detectCgroups } from '../../src/host/cgroup-detect.js';
import { cgroupPrefix, cgroupsEmpty, listVmCgroups, placeInCgroup, probeCgroups, removeVmCgroup, renameVmCgroupOf, vmCgroupLimits } from '../../src/host/cgroup.js';
import { confinementLayers } from '../../src/host/confinement.js';

const MiB = 1024 ** 2;
const SHAPE = { memoryMiB: 512, cpus: 2, accel: 'tcg', tbSizeMiB: 32 };
const SCOPE = '/var/lib/vmfork-test-home';

/** A fake cgroup fs: mount points are directories of a temp dir, written by the code as the kernel would accept. */
function fakeRoot(): { root: string; done: () => void } {
  const root = mkdtempSync(join(tmpdir(), 'vmfork-cgroup-'));
  return { root, done: () => rmSync(root, { recursive: true, force: true }) };
}

/** This host's layout: v1 per controller (cpu with cpuacct) and a v2 "unified" mount holding only hugetlb. */
function v1Layout(root: string): string {
  for (const d of ['cpu', 'memory', 'pids', 'freezer', 'unified']) mkdirSync(join(root, d));
  writeFileSync(join(root, 'unified', 'cgroup.controllers'), 'hugetlb\n');
  return [
    `tmpfs ${root} tmpfs rw,relatime,mode=755 0 0`,
    `cgroup ${root}/cpu cgroup rw,relatime,cpu,cpuacct 0 0`,
    `cgroup ${root}/memory cgroup rw,relatime,memory 0 0`,
    `cgroup ${root}/pids cgroup rw,relatime,pids 0 0`,
    `cgroup ${root}/freezer cgroup rw,relatime,freezer 0 0`,
    `cgroup2 ${root}/unified cgroup2 rw,relatime 0 0`,
  ].join('\n');
}

function v2Layout(root: string, controllers = 'cpuset cpu io memory hugetlb pids rdma misc'): string {
  writeFileSync(join(root, 'cgroup.controllers'), `${controllers}\n`);
  return `cgroup2 ${root} cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate,memory_recursiveprot 0 0\n`;
}

const read = (p: string): string => readFileSync(p, 'utf8');

test('limits: guest RAM + code cache + overhead; a weight and a pids limit per vCPU', () => {
  assert.deepEqual(vmCgroupLimits(SHAPE), { memoryBytes: (512 + 32 + 96) * MiB, cpuWeight: 200, cpuShares: 2048, pidsMax: 130 });
  assert.equal(vmCgroupLimits({ memoryMiB: 512, cpus: 1, accel: 'kvm' }).memoryBytes, (512 + 96) * MiB, 'KVM has no code cache');
  assert.equal(vmCgroupLimits({ memoryMiB: 512, cpus: 1, accel: 'tcg' }).memoryBytes, (512 + 1024 + 96) * MiB, "QEMU's default code cache");
  assert.equal(vmCgroupLimits({ memoryMiB: 512, cpus: 255, accel: 'kvm' }).cpuWeight, 10_000, 'cpu.weight stays in range');
  assert.notEqual(cgroupPrefix('/a'), cgroupPrefix('/b'), 'data dirs never share a name');
});

test('v1: detected per controller; QEMU placed in each hierarchy with its limits; listed; removed once empty', async () => {
  const { root, done } = fakeRoot();
  try {
    const mounts = v1Layout(root);
    const sys = { mounts, env: {} };
    const support = await detectCgroups(sys);
    assert.equal(support.version, 'v1');
    assert.deepEqual(support.missing, []);
    assert.deepEqual(support.hierarchies.map((h) => [h.mount, h.controllers]), [
      [`${root}/cpu`, ['cpu']],
      [`${root}/memory`, ['memory']],
      [`${root}/pids`, ['pids']],
    ]);

    const name = `${cgroupPrefix(SCOPE)}web-1`;
    // the kernel makes memsw only with swap accounting; when it is there it is bounded too
    mkdirSync(join(root, 'memory', name));
    writeFileSync(join(root, 'memory', name, 'memory.memsw.limit_in_bytes'), '9223372036854771712');
    const placed = await placeInCgroup(4242, { scope: SCOPE, vm: 'web-1', shape: SHAPE }, sys);
    assert.equal(placed.placed, true, placed.why);
    assert.equal(placed.version, 'v1');
    const bytes = String((512 + 32 + 96) * MiB);
    assert.equal(read(join(root, 'memory', name, 'memory.limit_in_bytes')), bytes);
    assert.equal(read(join(root, 'memory', name, 'memory.memsw.limit_in_bytes')), bytes);
    assert.equal(read(join(root, 'cpu', name, 'cpu.shares')), '2048');
    assert.equal(read(join(root, 'pids', name, 'pids.max')), '130');
    for (const c of ['cpu', 'memory', 'pids']) assert.equal(read(join(root, c, name, 'cgroup.procs')), '4242');
    assert.ok(!existsSync(join(root, 'freezer', name)), 'only the hierarchies of our controllers');

    assert.deepEqual([...(await listVmCgroups(SCOPE, sys))], [['web-1', placed.paths]]);
    assert.deepEqual([...(await listVmCgroups('/another/home', sys))], [], "another data dir's VMs are not listed");

    // a real cgroup with a process refuses rmdir; the fake one with files does too, so it is reported as left
    assert.deepEqual(await removeVmCgroup(SCOPE, 'web-1', sys), placed.paths);
    for (const p of placed.paths) for (const f of readdirSync(p)) rmSync(join(p, f));
    assert.deepEqual(await removeVmCgroup(SCOPE, 'web-1', sys), []);
    for (const p of placed.paths) assert.ok(!existsSync(p), `${p} removed`);
    assert.deepEqual(await removeVmCgroup(SCOPE, 'web-1', sys), [], 'idempotent');
  } finally {
    done();
  }
});

test("a warm process taken by a fork: its cgroups follow it to the child's name; emptiness read from cgroup.procs", async () => {
  const { root, done } = fakeRoot();
  try {
    const mounts = v1Layout(root);
    const placed = await placeInCgroup(555, { scope: SCOPE, vm: 'tpl-warm-1', shape: SHAPE }, { mounts, env: {} });
    assert.equal(placed.placed, true, placed.why);
    assert.equal(await cgroupsEmpty(placed.paths), false);
    const old = `/${cgroupPrefix(SCOPE)}tpl-warm-1`;
    const procCgroup = `9:name=systemd:/\n8:pids:${old}\n4:memory:${old}\n3:freezer:/\n1:cpu,cpuacct:${old}\n0::/\n`;
    await renameVmCgroupOf(SCOPE, 555, 'web-9', { mounts, env: {}, procCgroup });
    assert.deepEqual([...(await listVmCgroups(SCOPE, { mounts, env: {} }))].map(([vm, paths]) => [vm, paths.length]), [['web-9', 3]]);
    // a process in a cgroup that is not this data dir's is left where it is
    await renameVmCgroupOf('/another/home', 555, 'x', { mounts, env: {}, procCgroup: procCgroup.replaceAll('tpl-warm-1', 'web-9') });
    assert.deepEqual([...(await listVmCgroups(SCOPE, { mounts, env: {} }))].map(([vm]) => vm), ['web-9']);
    for (const p of (await listVmCgroups(SCOPE, { mounts, env: {} })).get('web-9') ?? []) writeFileSync(join(p, 'cgroup.procs'), '');
    assert.equal(await cgroupsEmpty((await listVmCgroups(SCOPE, { mounts, env: {} })).get('web-9') ?? []), true);
  } finally {
    done();
  }
});

test('v2: controllers enabled level by level under VMFORK_CGROUP_PARENT; memory.max, cpu.weight, pids.max', async () => {
  const { root, done } = fakeRoot();
  try {
    const sys = { mounts: v2Layout(root), env: { VMFORK_CGROUP_PARENT: '/vmfork.slice' } };
    const support = await detectCgroups(sys);
    assert.equal(support.version, 'v2');
    assert.deepEqual(support.hierarchies, [{ version: 2, mount: root, controllers: ['cpu', 'memory', 'pids'] }]);

    const dir = join(root, 'vmfork.slice', `${cgroupPrefix(SCOPE)}web-2`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'memory.swap.max'), 'max');
    const placed = await placeInCgroup(77, { scope: SCOPE, vm: 'web-2', shape: { ...SHAPE, cpus: 1 } }, sys);
    assert.equal(placed.placed, true, placed.why);
    assert.deepEqual(placed.paths, [dir]);
    assert.equal(read(join(root, 'cgroup.subtree_control')), '+cpu +memory +pids');
    assert.equal(read(join(root, 'vmfork.slice', 'cgroup.subtree_control')), '+cpu +memory +pids');
    assert.equal(read(join(dir, 'memory.max')), String((512 + 32 + 96) * MiB));
    assert.equal(read(join(dir, 'memory.swap.max')), '0');
    assert.equal(read(join(dir, 'cpu.weight')), '100');
    assert.equal(read(join(dir, 'pids.max')), '129');
    assert.equal(read(join(dir, 'cgroup.procs')), '77');

    // already enabled: nothing written again (the kernel lists enabled ones without "+")
    writeFileSync(join(root, 'cgroup.subtree_control'), 'cpu io memory pids\n');
    await placeInCgroup(78, { scope: SCOPE, vm: 'web-3', shape: SHAPE }, sys);
    assert.equal(read(join(root, 'cgroup.subtree_control')), 'cpu io memory pids\n');
  } finally {
    done();
  }
});

test('a missing controller, no cgroups, no permission, a bad parent: the VM runs and the placement says why', async () => {
  const { root, done } = fakeRoot();
  try {
    const req = { scope: SCOPE, vm: 'web-4', shape: SHAPE };
    const partial = await placeInCgroup(9, req, { mounts: v2Layout(root, 'cpu memory'), env: {} });
    assert.equal(partial.placed, false);
    assert.match(partial.why, /no hierarchy offers pids/);
    assert.equal(read(join(root, `${cgroupPrefix(SCOPE)}web-4`, 'memory.max')), String((512 + 32 + 96) * MiB), 'what can be limited is');

    const none = await placeInCgroup(9, req, { mounts: 'proc /proc proc rw 0 0\n', env: {} });
    assert.deepEqual([none.placed, none.version, none.why], [false, 'none', 'no cgroup hierarchy with memory, cpu or pids is mounted']);
    assert.match((await placeInCgroup(9, req, { mounts: '', env: { VMFORK_CGROUPS: 'off' } })).why, /VMFORK_CGROUPS=off/);
    assert.match((await placeInCgroup(9, req, { mounts: '', env: { VMFORK_CGROUP_PARENT: '../escape' } })).why, /not a plain cgroup path/);

    // a hierarchy where no cgroup can be made (as with a read-only cgroupfs): its mount point is a file
    writeFileSync(join(root, 'ro'), '');
    const mounts = `cgroup ${root}/ro cgroup rw,memory,pids,cpu 0 0\n`;
    const refused = await placeInCgroup(9, req, { mounts, env: {} });
    assert.equal(refused.placed, false);
    assert.match(refused.why, /memory,pids,cpu \(v1\): ENOTDIR/);
    const probe = await probeCgroups({ mounts, env: {} });
    assert.equal(probe.on, false);
    assert.match(probe.why, /cannot make a cgroup/);
  } finally {
    done();
  }
});

test('doctor layers: cgroups on with where and what; the QEMU user decides three more; chroot off by design', async () => {
  const { root, done } = fakeRoot();
  try {
    const mounts = v1Layout(root);
    const off = await confinementLayers({ cgroups: { mounts, env: {} }, qemu: { on: false, reason: 'VMFORK_CONFINE=0' } });
    assert.deepEqual(off.map((l) => [l.layer, l.on]), [['cgroups', true], ['qemu-user', false], ['sandbox', false], ['file-modes', false], ['chroot', false]]);
    assert.match(off[1]?.why ?? '', /VMFORK_CONFINE=0/);
    assert.equal(off[1]?.fix, 'unset VMFORK_CONFINE');
    const layers = await confinementLayers({ cgroups: { mounts, env: {} }, qemu: { on: true, gid: 995, uidBase: 1_900_000_000, uidCount: 65_536 } });
    assert.deepEqual(layers.map((l) => [l.layer, l.on]), [['cgroups', true], ['qemu-user', true], ['sandbox', true], ['file-modes', true], ['chroot', false]]);
    assert.match(layers[2]?.why ?? '', /^-sandbox on,.*spawn=deny/);
    assert.match(layers[0]?.why ?? '', /^cgroup v1 \(cpu at .*\/cpu; memory at .*\/memory; pids at .*\/pids\) under \/: .*pids ≤ 128 \+ vCPUs$/);
    for (const l of layers) assert.equal(l.fix === null, l.on, `${l.layer}: a fix exactly when off`);
    assert.deepEqual(readdirSync(join(root, 'memory')), [], 'the probe cgroup is gone');
  } finally {
    done();
  }
});
