import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeVmSpec } from '../../src/spec/index.js';
import { currentProcess, ensureDatastore, getVm, LOCAL_HOST_ID, templateChildren } from '../../src/store/index.js';
import { run, waitUntil, type RunResult } from '../../src/util/index.js';
import { stopVm } from '../../src/vm/index.js';
import { ensureTemplate, forkTracked, useSharedRung, vmTest, type VmTracker } from '../fixtures/ladder.js';
import { useServedCli } from '../fixtures/served-cli.js';

// children of the shared rung promoted through `vmfork serve`'s API as a user drives it: the CLI
const fx = useSharedRung();
const tracker = (): VmTracker => fx.tracker;
const { cli, sh } = useServedCli(fx);

/** A refused request: a non-zero exit, the code in the JSON error. */
async function refused(args: string[], code: string): Promise<void> {
  const r = await cli([...args, '--json']);
  assert.notEqual(r.code, 0, `${args.join(' ')} was refused`);
  assert.match(r.stdout + r.stderr, new RegExp(`"code": *"${code}"`), `${args.join(' ')}: ${r.stdout}${r.stderr}`);
}

const LOOP = `nohup sh -c 'i=0; while :; do i=$((i+1)); echo $i >> /root/loop; sync; sleep 0.2; done' >/dev/null 2>&1 & echo $! > /root/loop.pid`;
// the loop's shell may not have made the file yet: no file is no line
const lines = async (name: string): Promise<number> => Number(await sh(name, 'cat /root/loop 2>/dev/null | wc -l'));

async function chain(path: string): Promise<{ backing?: string; check: RunResult }> {
  const info = JSON.parse((await run('qemu-img', ['info', '-U', '--output=json', path])).stdout) as { 'backing-filename'?: string };
  const check = await run('qemu-img', ['check', '-U', path], { allowFailure: true });
  return { ...(info['backing-filename'] ? { backing: info['backing-filename'] } : {}), check };
}

/** The loop's file: 1, 2, 3, … with no gap, repeat or garbage. */
function assertCounter(text: string): number {
  const got = text.split('\n');
  got.forEach((l, i) => assert.equal(l, String(i + 1), `line ${i + 1} of /root/loop is "${l}"`));
  return got.length;
}

/** What QEMU said (a failed promotion shows why). */
const qemuLog = (name: string): Promise<string> => readFile(join(fx.th.home.vms, name, 'qemu.stderr.log'), 'utf8').catch(() => '(none)');

interface TaskJson {
  state: string;
  result?: { mode: string; bytes: number; seconds: number; mibPerSecond: number; secondsPerGiB: number; template: string | null; disks: { id: string; path: string; from: string }[] };
  lastError?: { code: string; message: string };
}

vmTest('promote while a loop writes: no backing file, check clean, the loop intact, the same boot, no longer the template\'s child; mirrored to another datastore too', tracker, async () => {
  const batch = await forkTracked(fx.th, tracker(), { template: fx.template, count: 2, namePattern: 'prom-{n}' });
  assert.deepEqual(batch.failed, [], JSON.stringify(batch.failed));
  const [a, b] = batch.children.map((c) => c.name);
  assert.ok(a && b);
  const diskOf = async (name: string): Promise<string> => decodeVmSpec((await getVm(fx.th.db, name))?.spec_json ?? '{}').disks[0]?.path ?? '';
  const scratch = await mkdtemp(join(tmpdir(), 'vmfork-promote-'));
  const tiny = join(scratch, 'tiny');
  let mounted = false;
  try {
    // bad input first: each answered at once, nothing changed
    await refused(['vm', 'promote', a, '--datastore', 'nope'], 'VMFORK_DATASTORE_NOT_FOUND');
    await refused(['vm', 'promote', a, '--rate', '0'], 'VMFORK_INVALID_ARGUMENT');
    await run('mkdir', ['-p', tiny]);
    await run('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'vmfork-promote-test', tiny]);
    mounted = true;
    await ensureDatastore(fx.th.db, { host_id: LOCAL_HOST_ID, name: 'prom-tiny', path: tiny, created_at: new Date().toISOString() });
    await refused(['vm', 'promote', a, '--datastore', 'prom-tiny'], 'VMFORK_NO_SPACE');
    assert.ok((await chain(await diskOf(a))).backing, 'the refused requests left the disk linked');

    const linked = await diskOf(a);
    const bootId = await sh(a, 'cat /proc/sys/kernel/random/boot_id');
    await sh(a, LOOP);
    await waitUntil(async () => (await lines(a)) >= 3, { deadlineMs: 60_000, everyMs: 200, what: 'the loop to write' });
    const atStart = await lines(a);

    const promoted = await cli(['vm', 'promote', a, '--wait', '--json']);
    assert.equal(promoted.code, 0, `${promoted.stdout}${promoted.stderr}\nQEMU: ${await qemuLog(a)}`);
    const task = JSON.parse(promoted.stdout) as TaskJson;
    assert.equal(task.state, 'succeeded', JSON.stringify(task));
    const r = task.result;
    assert.ok(r);
    process.stderr.write(`promote (in place) of ${a}: ${(r.bytes / 1024 ** 2).toFixed(0)} MiB in ${r.seconds} s = ${r.mibPerSecond} MiB/s (${r.secondsPerGiB} s per GiB)\n`);
    // vmfork's overlays have subclusters, which QEMU 7.2's block-stream aborts on: promoted in place by a mirror
    assert.equal(r.mode, 'mirror');
    assert.ok(!existsSync(linked), 'the linked overlay is gone');
    assert.equal(r.template, fx.template);
    assert.ok((await lines(a)) > atStart, 'the loop wrote on through the promotion');

    await sh(a, 'kill $(cat /root/loop.pid); sync');
    const disk = await diskOf(a);
    const flat = await chain(disk);
    assert.equal(flat.backing, undefined, `${disk} has no backing file`);
    assert.equal(flat.check.code, 0, `qemu-img check: ${flat.check.stdout}${flat.check.stderr}`);
    const n = assertCounter(await sh(a, 'cat /root/loop'));
    assert.ok(n > atStart);
    assert.equal(await sh(a, 'cat /proc/sys/kernel/random/boot_id'), bootId, 'the guest ran on: the same boot');

    // the record: no longer the template's child (template and replica removal count those), its next QEMU's RAM its own
    const row = await getVm(fx.th.db, a);
    assert.equal(row?.template_name, null);
    assert.ok(!(await templateChildren(fx.th.db, fx.template)).includes(a));
    assert.deepEqual(decodeVmSpec(row?.spec_json ?? '{}').memory, { kind: 'file', path: row?.dir, share: false });
    await refused(['vm', 'promote', a], 'VMFORK_VM_FULL_CLONE');

    // a mirror to another datastore and a pivot: the disk is a new file there, the old overlay gone
    const second = join(fx.th.root, 'datastores', 'prom-second');
    await ensureDatastore(fx.th.db, { host_id: LOCAL_HOST_ID, name: 'prom-second', path: second, created_at: new Date().toISOString() });
    const oldDisk = await diskOf(b);
    const bBoot = await sh(b, 'cat /proc/sys/kernel/random/boot_id');
    await sh(b, 'echo before > /root/m && sync');
    const mirrored = await cli(['vm', 'promote', b, '--datastore', 'prom-second', '--rate', '512', '--wait', '--json']);
    assert.equal(mirrored.code, 0, `${mirrored.stdout}${mirrored.stderr}\nQEMU: ${await qemuLog(b)}`);
    const mtask = JSON.parse(mirrored.stdout) as TaskJson;
    assert.equal(mtask.state, 'succeeded', JSON.stringify(mtask));
    process.stderr.write(`promote (mirror) of ${b}: ${mtask.result?.mibPerSecond} MiB/s\n`);
    const newDisk = await diskOf(b);
    assert.ok(newDisk.startsWith(join(second, 'promoted', b)), newDisk);
    assert.ok(!existsSync(oldDisk), 'the old overlay is removed');
    await sh(b, 'echo after >> /root/m && sync');
    assert.equal(await sh(b, 'cat /root/m'), 'before\nafter');
    assert.equal(await sh(b, 'cat /proc/sys/kernel/random/boot_id'), bBoot);
    const m = await chain(newDisk);
    assert.equal(m.backing, undefined);
    assert.equal(m.check.code, 0, `qemu-img check: ${m.check.stdout}${m.check.stderr}`);

    // a VM that is not running: the state table's answer
    await stopVm(fx.th, b);
    await refused(['vm', 'promote', b], 'VMFORK_VM_STATE');
    await tracker().teardown();
    assert.ok(!existsSync(join(second, 'promoted', b)), 'destroy removed the promoted disk on the other datastore');
  } finally {
    await fx.th.db.deleteFrom('datastores').where('name', 'in', ['prom-tiny', 'prom-second']).execute();
    if (mounted) await run('umount', [tiny], { allowFailure: true });
    await rm(scratch, { recursive: true, force: true });
  }
});

vmTest('a promoted child outlives its template: refused before, removed after, the guest runs on the unlinked RAM file', tracker, async (t) => {
  // a template of this test's own (the shared one stays): made, forked, its child promoted, then the template removed
  const template = 'prom-tpl';
  await ensureTemplate(fx.th, template);
  t.after(() => cli(['template', 'rm', template, '--force']).then(() => undefined));
  const batch = await forkTracked(fx.th, tracker(), { template, count: 1, namePattern: 'prom-own-{n}' });
  assert.deepEqual(batch.failed, [], JSON.stringify(batch.failed));
  const name = batch.children[0]?.name ?? '';
  await refused(['template', 'rm', template], 'VMFORK_TEMPLATE_IN_USE');
  const bootId = await sh(name, 'cat /proc/sys/kernel/random/boot_id');

  const promoted = await cli(['vm', 'promote', name, '--wait', '--json']);
  assert.equal(promoted.code, 0, `${promoted.stdout}${promoted.stderr}\nQEMU: ${await qemuLog(name)}`);
  const removed = await cli(['template', 'rm', template, '--json']);
  assert.equal(removed.code, 0, `template rm after the promotion: ${removed.stdout}${removed.stderr}`);
  assert.ok(!existsSync(join(fx.th.home.templates, template)), 'the template\'s files are gone');

  // the QEMU still maps the template's RAM file, now unlinked: the kernel keeps its inode while it is mapped
  const pid = (await currentProcess(fx.th.db, name))?.pid;
  const maps = await readFile(`/proc/${pid}/maps`, 'utf8');
  assert.match(maps, new RegExp(`${join(fx.th.home.templates, template, 'ram')} \\(deleted\\)`), 'the RAM file is mapped, unlinked');
  // the guest reads pages it never wrote (the template's, through the unlinked file) and writes new ones
  await sh(name, 'sha256sum /usr/bin/* > /dev/null && dd if=/dev/urandom of=/root/r bs=1M count=8 2>/dev/null && sync');
  assert.equal(await sh(name, 'cat /proc/sys/kernel/random/boot_id'), bootId, 'the same boot');
});
