import assert from 'node:assert/strict';
import { readdir, readFile, stat } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ensureApiToken } from '../../src/api/index.js';
import { qemuConfinement } from '../../src/config/index.js';
import { leaseOfVm } from '../../src/network/index.js';
import { QmpClient, QmpCommandError } from '../../src/qemu/index.js';
import { currentProcess, getTemplate, getVm } from '../../src/store/index.js';
import { run, waitUntil } from '../../src/util/index.js';
import { checkpointVm } from '../../src/vm/index.js';
import { forkTracked, guestShell, useSharedRung, vmTest, type VmTracker } from '../fixtures/ladder.js';

// What an escaped guest would try, done two ways (docs/security.md): by QEMU itself (its monitor makes it open files
// as it runs, i.e. as the VM's uid under its seccomp filter), and as the VM's uid in its network namespace (a shell
// such an escape would get). Each attempt is refused; a fork, its identity and a checkpoint still work.
const fx = useSharedRung();
const tracker = (): VmTracker => fx.tracker;

interface Confined {
  name: string;
  pid: number;
  uid: number;
  netns: string;
  qmp: string;
  disk: string;
}

async function describe(name: string): Promise<Confined> {
  const vm = await getVm(fx.th.db, name);
  const proc = await currentProcess(fx.th.db, name);
  const lease = await leaseOfVm(fx.th.db, name);
  assert.ok(vm && proc && lease && vm.qemu_uid !== null, `${name}: a record, a process, a lease and a uid`);
  const status = await readFile(`/proc/${proc.pid}/status`, 'utf8');
  assert.match(status, new RegExp(`^Uid:\\s+${vm.qemu_uid}\\s+${vm.qemu_uid}\\s+${vm.qemu_uid}\\s+${vm.qemu_uid}$`, 'm'), 'QEMU runs as the VM\'s uid (real, effective, saved, fs)');
  assert.match(status, /^Seccomp:\s+2$/m, 'QEMU runs under its seccomp filter');
  assert.match(status, /^CapEff:\s+0+$/m, 'with no capability');
  return { name, pid: proc.pid, uid: vm.qemu_uid, netns: lease.netns, qmp: proc.qmp_path, disk: join(vm.dir, 'disk.qcow2') };
}

/** A QMP command QEMU must refuse with "Permission denied" (it opened the file as the VM's uid). */
async function refusedByQemu(qmp: QmpClient, command: string, args: Record<string, unknown>): Promise<void> {
  await assert.rejects(qmp.execute(command, args), (err: unknown) => {
    assert.ok(err instanceof QmpCommandError || (err as { code?: string }).code === 'VMFORK_QMP_ERROR', String(err));
    assert.match(String((err as Error).message), /Permission denied/, `${command} ${JSON.stringify(args)}`);
    return true;
  });
}

/** A shell command run as the VM's uid and group in its namespace: must fail with "Permission denied". */
async function refusedAsUid(vm: Confined, gid: number, script: string): Promise<void> {
  const r = await run('ip', ['netns', 'exec', vm.netns, 'setpriv', `--reuid=${vm.uid}`, `--regid=${gid}`, '--clear-groups', '--no-new-privs', '--', 'sh', '-c', script], { allowFailure: true, timeoutMs: 30_000 });
  assert.notEqual(r.code, 0, `${script} succeeded as uid ${vm.uid}`);
  assert.match(r.stderr, /Permission denied/, `${script}: ${r.stderr}`);
}

vmTest('an escaped QEMU is confined: another VM\'s disk, the store, the token and anything outside its directory are refused to QEMU and to its uid; exec kills it; forks, identity and checkpoints still work', tracker, async (t) => {
  const c = await qemuConfinement();
  if (!c.on) {
    t.skip(`QEMU is not confined here: ${c.reason}`);
    return;
  }
  const batch = await forkTracked(fx.th, tracker(), { template: fx.template, count: 2, namePattern: 'esc-{n}' });
  assert.deepEqual(batch.failed, [], JSON.stringify(batch.failed));
  const [a, b] = await Promise.all(batch.children.map((ch) => describe(ch.name)));
  assert.ok(a && b);
  assert.notEqual(a.uid, b.uid, 'each VM has its own uid');
  const token = (await ensureApiToken(fx.th.home)).path;

  // inside the QEMU: its monitor makes it open files, as an escape inside QEMU would
  const qmp = await QmpClient.connect(a.qmp, { connectTimeoutMs: 10_000 });
  try {
    await refusedByQemu(qmp, 'blockdev-add', { driver: 'file', 'node-name': 'steal-disk', filename: b.disk, 'read-only': true });
    await refusedByQemu(qmp, 'blockdev-add', { driver: 'file', 'node-name': 'steal-store', filename: fx.th.home.db, 'read-only': true });
    await refusedByQemu(qmp, 'blockdev-add', { driver: 'file', 'node-name': 'steal-token', filename: token, 'read-only': true });
    // writing outside its directory: QEMU creates the dump file itself
    await refusedByQemu(qmp, 'dump-guest-memory', { paging: false, protocol: `file:${join(fx.th.home.vms, 'escape.dump')}` });
  } finally {
    qmp.close();
  }

  // as the VM's uid in its namespace (what an escape that got a shell would be)
  await refusedAsUid(a, c.gid, `head -c 512 ${b.disk}`);
  await refusedAsUid(a, c.gid, `head -c 16 ${fx.th.home.db}`);
  await refusedAsUid(a, c.gid, `cat ${token}`);
  await refusedAsUid(a, c.gid, `touch ${join(fx.th.home.vms, 'escape')}`);
  await refusedAsUid(a, c.gid, `touch ${join(fx.th.home.root, 'escape')}`);

  // legitimate work of the other VM is untouched: its guest answers with its own identity, and it checkpoints
  const id = await guestShell(fx.th.db, b.name, 'cat /etc/machine-id');
  assert.equal(id.code, 0, id.err);
  const other = await guestShell(fx.th.db, a.name, 'cat /etc/machine-id');
  assert.notEqual(id.out.trim(), other.out.trim(), 'two forks, two identities');
  const cp = await checkpointVm(fx.th, b.name, { label: 'after-escape', memory: false });
  assert.equal(cp.memory, false);

  // starting a process: QEMU may not exec (spawn=deny), and the filter kills it for trying
  const qmp2 = await QmpClient.connect(a.qmp, { connectTimeoutMs: 10_000 });
  try {
    await qmp2.execute('migrate', { uri: 'exec:touch /tmp/vmfork-escaped' }).catch(() => undefined);
  } finally {
    qmp2.close();
  }
  const gone = await waitGone(a.pid);
  assert.ok(gone, `QEMU ${a.pid} was killed by its seccomp filter at exec`);
  await assert.rejects(readFile('/tmp/vmfork-escaped'), { code: 'ENOENT' });
});

async function waitGone(pid: number): Promise<boolean> {
  return waitUntil(async () => ((await readFile(`/proc/${pid}/status`, 'utf8').catch(() => 'State: X')).match(/^State:\s+[ZX]/m) ? true : undefined), { deadlineMs: 30_000, everyMs: 50, what: `QEMU ${pid} to die` });
}

/** Size and mtime of every file under `dir`: what a guest must not be able to change. */
async function census(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const path = join(e.parentPath, e.name);
    const s = await stat(path);
    out.set(path, `${s.size}@${s.mtimeMs}`);
  }
  return out;
}

// The same attempts from inside a guest, as its root user: the guest's only ways out are the devices QEMU gives it
// (its own disks, its NIC on the namespace's bridge, its serial port and agent channel). The serial flood is
// serial-log.itest's; the agent channel's junk is json-line-stream's and junk-guard's.
vmTest('root inside a guest reaches no other disk, no host service and no file but its own overlay', tracker, async () => {
  const batch = await forkTracked(fx.th, tracker(), { template: fx.template, count: 2, namePattern: 'esc-g{n}' });
  assert.deepEqual(batch.failed, [], JSON.stringify(batch.failed));
  const [a, b] = batch.children.map((ch) => ch.name);
  assert.ok(a && b);
  const vmA = await getVm(fx.th.db, a);
  const vmB = await getVm(fx.th.db, b);
  const procA = await currentProcess(fx.th.db, a);
  const lease = await leaseOfVm(fx.th.db, a);
  const tpl = await getTemplate(fx.th.db, fx.template);
  assert.ok(vmA && vmB && procA && lease && tpl);

  // another VM's disk: the guest's block devices are exactly the drives its QEMU has, and none is the sibling's
  const devices = await guestShell(fx.th.db, a, 'ls /sys/block | grep -E "^(vd|sd|hd|nvme)" || true');
  const qmp = await QmpClient.connect(procA.qmp_path, { connectTimeoutMs: 10_000 });
  let files: string[];
  try {
    const blocks = (await qmp.execute('query-block', {})) as { inserted?: { file: string } }[];
    files = blocks.flatMap((x) => (x.inserted ? [x.inserted.file] : []));
  } finally {
    qmp.close();
  }
  assert.equal(devices.out.split('\n').filter(Boolean).length, files.length, `guest disks ${devices.out} vs QEMU drives ${files.join(', ')}`);
  for (const f of files) assert.ok(f.startsWith(vmA.dir), `${f}: a drive of ${a} is in its own directory`);

  // the store and the token are reached only through the API: a listener on every host address, in the host's
  // namespace, and the guest tries it through its gateway (the only host-side address it can name)
  let reached = 0;
  const server = createServer((sock) => {
    reached++;
    sock.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  try {
    const port = (server.address() as AddressInfo).port;
    const tcp = await guestShell(fx.th.db, a, `timeout 5 bash -c 'exec 3<>/dev/tcp/${lease.gateway}/${port}' 2>&1; echo "rc=$?"`);
    assert.doesNotMatch(tcp.out, /rc=0$/, `the guest connected to ${lease.gateway}:${port}: ${tcp.out}`);
    const routes = await run('ip', ['netns', 'exec', lease.netns, 'ip', '-o', 'route', 'show', 'default'], { allowFailure: true });
    assert.equal(routes.stdout.trim(), '', 'the namespace has no route out');
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  assert.equal(reached, 0, 'nothing reached the host listener');

  // writing outside its directory: the guest writes and syncs 16 MiB; only its own overlay changes, never the
  // template's files or the sibling's
  const before = await census(tpl.dir);
  const sizeA = (await stat(join(vmA.dir, 'disk.qcow2'))).size;
  const w = await guestShell(fx.th.db, a, 'dd if=/dev/urandom of=/var/tmp/escape bs=1M count=16 conv=fsync 2>&1 && sync', 180_000);
  assert.equal(w.code, 0, w.err || w.out);
  assert.ok((await stat(join(vmA.dir, 'disk.qcow2'))).size > sizeA, 'the guest\'s writes land in its own overlay');
  assert.deepEqual(await census(tpl.dir), before, 'the template\'s files are unchanged');
  const seen = await guestShell(fx.th.db, b, 'test -e /var/tmp/escape && echo present || echo absent');
  assert.equal(seen.out, 'absent', 'the sibling does not see the file');
});

