import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planGc, qmpDirOf } from '../../src/gc/plan.js';
import type { GcScan, ScannedVm } from '../../src/gc/scan.js';

const ROOT = '/d';

function scan(over: Partial<GcScan> = {}): GcScan {
  return { root: ROOT, qemus: [], cgroups: [], dirs: { vm: [], template: [], replica: [], promoted: [] }, taps: [], namespaces: [], leases: [], vms: [], templates: [], replicas: [], networks: [], healable: [], liveTasks: 0, ...over };
}

function vm(name: string, over: Partial<ScannedVm> = {}): ScannedVm {
  return { name, role: 'child', state: 'running', dir: `${ROOT}/vms/${name}`, pool: null, lastError: null, busy: false, qemuAlive: true, qemu: { pid: 100, startTime: 7 }, runtimeFiles: [], pidfilePid: null, checkpoints: 0, ...over };
}

const qmpArg = (dir: string): string => `unix:${dir.replace(/,/g, ',,')}/qmp.sock,server=on,wait=off`;
const summary = (s: GcScan): string[] => planGc(s).map((a) => `${a.kind} ${a.target}`);

test('qmpDirOf reads the VM directory out of the QMP argument (commas unescaped), and nothing from other arguments', () => {
  assert.equal(qmpDirOf({ args: [qmpArg('/d/vms/a,b')] }), '/d/vms/a,b');
  assert.equal(qmpDirOf({ args: ['file=/d/templates/t/ram'] }), undefined);
});

test('a QEMU is killed only when its QMP directory has no record, or a resting record that names another process', () => {
  const s = scan({
    qemus: [
      { pid: 1, startTime: 1, args: [qmpArg('/d/vms/ghost')] },
      { pid: 100, startTime: 7, args: [qmpArg('/d/vms/ok')] },
      { pid: 2, startTime: 2, args: [qmpArg('/d/vms/stale')] },
      { pid: 3, startTime: 3, args: [qmpArg('/d/vms/busy')] },
      { pid: 4, startTime: 4, args: ['-drive', 'file=/d/templates/t/disk.qcow2'] },
    ],
    vms: [vm('ok'), vm('stale', { state: 'stopped', qemuAlive: false, qemu: null }), vm('busy', { state: 'forking', busy: true, qemu: null })],
    dirs: { vm: ['/d/vms/ghost', '/d/vms/ok', '/d/vms/stale', '/d/vms/busy'], template: [], replica: [], promoted: [] },
  });
  assert.deepEqual(summary(s), ['kill-qemu QEMU 1', 'kill-qemu QEMU 2', 'remove-dir /d/vms/ghost']);
});

test('a dead QEMU: a child outside a pool is destroyed, a pool child, a cold-booted VM or one with a checkpoint only marked stopped, a busy one left', () => {
  const s = scan({
    vms: [
      vm('child', { qemuAlive: false }),
      vm('crashed', { state: 'stopped', qemuAlive: false, lastError: 'QEMU exited while running' }),
      vm('user-stopped', { state: 'stopped', qemuAlive: false }),
      vm('desk-1', { qemuAlive: false, pool: 'desk' }),
      vm('cold', { role: 'vm', qemuAlive: false }),
      vm('warm-1', { role: 'warm', state: 'warm', qemuAlive: false }),
      vm('mid-fork', { state: 'forking', busy: true, qemuAlive: false }),
      vm('saved', { qemuAlive: false, checkpoints: 1 }),
      vm('saved-failed', { state: 'failed', qemuAlive: false, lastError: 'revert failed', checkpoints: 2 }),
    ],
  });
  assert.deepEqual(summary(s), ['destroy-vm VM child', 'destroy-vm VM crashed', 'destroy-vm VM warm-1', 'reconcile-vm VM desk-1', 'reconcile-vm VM cold', 'reconcile-vm VM saved']);
});

test('records a dead vmfork left transitional go to heal, and nothing else is planned for them', () => {
  const s = scan({
    healable: [{ table: 'vms', name: 'half', state: 'forking', ownerPid: 42 }],
    vms: [vm('half', { state: 'forking', qemuAlive: false, runtimeFiles: ['qmp.sock'] })],
    qemus: [{ pid: 5, startTime: 5, args: [qmpArg('/d/vms/half')] }],
    leases: [{ network: 'n', vm: 'half', tap: 'vt2', ip: '10.0.0.2' }],
  });
  assert.deepEqual(summary(s), ['heal-record vm half']);
});

test('stale sockets and a pidfile are removed from a resting VM whose QEMU is gone, never while a QEMU uses the directory', () => {
  const files = { runtimeFiles: ['qmp.sock', 'qemu.pid'], pidfilePid: 999 };
  const s = scan({
    vms: [vm('cold', { role: 'vm', state: 'stopped', qemuAlive: false, qemu: null, ...files }), vm('up', { ...files })],
  });
  const plan = planGc(s);
  assert.deepEqual(plan.map((a) => `${a.kind} ${a.target}`), ['remove-file /d/vms/cold/qmp.sock', 'remove-file /d/vms/cold/qemu.pid']);
  assert.match(plan[1]?.reason ?? '', /pid 999/);
});

test('leases and taps: a lease with no VM is released (not a busy template parent\'s), a tap no lease names is deleted', () => {
  const s = scan({
    vms: [vm('a')],
    templates: [{ name: 'tpl', dir: '/d/templates/tpl', replicaId: null, busy: true, children: [], runtimeFiles: [], pidfilePid: null }],
    leases: [
      { network: 'n', vm: 'a', tap: 'vt2', ip: '10.0.0.2' },
      { network: 'n', vm: 'gone', tap: 'vt3', ip: '10.0.0.3' },
      { network: 'n', vm: 'tpl', tap: 'vt4', ip: '10.0.0.4' },
    ],
    taps: ['vt2', 'vt3', 'vt4', 'vt9'].map((tap) => ({ network: 'n', netns: 'p-n', bridge: 'vmf-br', tap })),
    networks: [{ name: 'n', netns: 'p-n', busy: false }],
    dirs: { vm: [], template: ['/d/templates/tpl'], replica: [], promoted: [] },
  });
  assert.deepEqual(summary(s), ['release-lease 10.0.0.3 on n (tap vt3)', 'delete-tap p-n/vt9']);
});

test('a namespace with this data dir\'s prefix and no network record is deleted, unless it holds a foreign link', () => {
  const s = scan({
    networks: [{ name: 'n', netns: 'p-n', busy: false }],
    namespaces: [
      { name: 'p-n', alias: 'vmfork:1', foreign: [] },
      { name: 'p-old', alias: 'vmfork:2', foreign: [] },
      { name: 'p-odd', alias: undefined, foreign: ['eth0 (veth)'] },
    ],
  });
  const plan = planGc(s);
  assert.deepEqual(plan.map((a) => `${a.kind} ${a.target}`), ['delete-netns netns p-old']);
  assert.deepEqual(plan[0]?.kind === 'delete-netns' && plan[0].ownerId, '2');
});

test("a VM's cgroup is removed when no VM record has its name and it holds no process", () => {
  const cgroups = [
    { vm: 'kept', paths: ['/cg/memory/vmfork-t.kept'], empty: true },
    { vm: 'gone', paths: ['/cg/memory/vmfork-t.gone', '/cg/pids/vmfork-t.gone'], empty: true },
    { vm: 'renamed', paths: ['/cg/memory/vmfork-t.renamed'], empty: false },
  ];
  const plan = planGc(scan({ vms: [vm('kept')], cgroups }));
  assert.deepEqual(plan.map((a) => `${a.kind} ${a.target}`), ['remove-cgroup /cg/memory/vmfork-t.gone, /cg/pids/vmfork-t.gone']);
});

test('replicas nothing references are removed with their templates; a pool, a child or a live task protects them; hand-made templates never go', () => {
  const t = (name: string, replicaId: string | null, children: string[] = []): GcScan['templates'][number] => ({ name, dir: `/d/templates/${name}`, replicaId, busy: false, children, runtimeFiles: [], pidfilePid: null });
  const base = {
    replicas: [
      { id: 'r-used', dir: '/d/ds/replicas/r-used', busy: false, pools: ['desk'] },
      { id: 'r-forked', dir: '/d/ds/replicas/r-forked', busy: false, pools: [] },
      { id: 'r-free', dir: '/d/ds/replicas/r-free', busy: false, pools: [] },
      { id: 'r-making', dir: '/d/ds/replicas/r-making', busy: true, pools: [] },
    ],
    templates: [t('t-used', 'r-used'), t('t-forked', 'r-forked', ['c1']), t('t-free', 'r-free'), t('mine', null), t('t-lost', 'r-gone')],
  };
  assert.deepEqual(summary(scan(base)), ['remove-template template t-lost', 'remove-replica replica r-free (with template t-free)']);
  assert.deepEqual(summary(scan({ ...base, liveTasks: 1 })), [], 'a live task may be about to link a replica');
});

test('directories with no record are removed (promoted disks: no VM of that name); a template parent\'s directory is its template\'s', () => {
  const s = scan({
    vms: [vm('a'), vm('tpl', { role: 'template', dir: '/d/templates/tpl' })],
    templates: [{ name: 'tpl', dir: '/d/templates/tpl', replicaId: null, busy: false, children: [], runtimeFiles: [], pidfilePid: null }],
    replicas: [{ id: 'r1', dir: '/d/ds/replicas/r1', busy: false, pools: ['p'] }],
    dirs: { vm: ['/d/vms/a', '/d/vms/b'], template: ['/d/templates/tpl', '/d/templates/old'], replica: ['/d/ds/replicas/r1', '/d/ds/replicas/r0'], promoted: ['/d/ds/promoted/a', '/d/ds/promoted/gone'] },
  });
  assert.deepEqual(summary(s), ['remove-dir /d/vms/b', 'remove-dir /d/templates/old', 'remove-dir /d/ds/replicas/r0', 'remove-dir /d/ds/promoted/gone']);
});

test("a template's parent while its template is made, and an internal clone while its replica is made, are their owners' (nothing planned)", () => {
  const tpl = (busy: boolean): GcScan['templates'][number] => ({ name: 'tpl', dir: '/d/templates/tpl', replicaId: null, busy, children: [], runtimeFiles: [], pidfilePid: null });
  const parent = vm('tpl', { role: 'template', state: 'paused', dir: '/d/templates/tpl', qemuAlive: false, qemu: null, runtimeFiles: ['qmp.sock'] });
  const clone = vm('clone-1', { role: 'clone', state: 'stopped', qemuAlive: false, qemu: null, lastError: 'QEMU exited', runtimeFiles: ['qmp.sock'] });
  const making = { id: 'r1', dir: '/d/ds/replicas/r1', busy: true, pools: [] };
  const cut = { pid: 8, startTime: 8, args: [qmpArg('/d/templates/tpl')] };
  assert.deepEqual(summary(scan({ vms: [parent, clone], templates: [tpl(true)], replicas: [making], qemus: [cut] })), []);
  assert.deepEqual(summary(scan({ vms: [parent, clone], templates: [tpl(false)], replicas: [{ ...making, busy: false, pools: ['p'] }] })), [
    'destroy-vm VM clone-1',
    'reconcile-vm VM tpl',
    'remove-file /d/templates/tpl/qmp.sock',
  ]);
});
