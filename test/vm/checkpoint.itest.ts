import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { startServer, type RunningServer } from '../../src/api/index.js';
import { createProvisionService } from '../../src/pool/index.js';
import { refreshChild } from '../../src/fork/index.js';
import { currentProcess, getVm, listCheckpoints, updateVm } from '../../src/store/index.js';
import { drainTasks } from '../../src/task/index.js';
import { run, type RunResult } from '../../src/util/index.js';
import { CLI, forkTracked, guestShell, useSharedRung, vmTest, type VmTracker } from '../fixtures/ladder.js';

// a child of the shared rung, checkpointed and reverted through `vmfork serve`'s API as a user drives it: the CLI
const fx = useSharedRung();
const tracker = (): VmTracker => fx.tracker;
let server: RunningServer | undefined;

/** The server the CLI talks to, in this process, started on first use (the shared rung is ready by then). */
async function serverUrl(): Promise<string> {
  server ??= await startServer(fx.th, { listen: '127.0.0.1:0', provision: createProvisionService(fx.th) });
  return server.url;
}

after(async () => {
  await server?.close();
  assert.ok(await drainTasks(60_000), 'no checkpoint task still runs');
});

async function cli(args: string[]): Promise<RunResult> {
  return run(process.execPath, [CLI, ...args], { env: { ...process.env, VMFORK_HOME: fx.th.root, VMFORK_URL: await serverUrl() }, allowFailure: true, timeoutMs: 600_000 });
}

async function sh(name: string, script: string): Promise<string> {
  const r = await guestShell(fx.th.db, name, script);
  assert.equal(r.code, 0, `${script}: ${r.err}`);
  return r.out;
}

/** boot_id and uptime in seconds, read in one exec. */
async function clock(name: string): Promise<{ bootId: string; uptime: number }> {
  const [bootId, uptime] = (await sh(name, 'cat /proc/sys/kernel/random/boot_id; cut -d" " -f1 /proc/uptime')).split('\n');
  return { bootId: bootId ?? '', uptime: Number(uptime) };
}

interface TaskJson {
  state: string;
  result?: Record<string, unknown>;
  lastError?: { code: string; message: string };
}

/** One child of the shared template, tracked (destroyed at the test's end whatever happens). */
async function forkOne(namePattern: string): Promise<{ name: string; mac: string }> {
  const batch = await forkTracked(fx.th, tracker(), { template: fx.template, count: 1, namePattern });
  assert.deepEqual(batch.failed, [], JSON.stringify(batch.failed));
  const [child] = batch.children;
  assert.ok(child);
  return child;
}

/** A task-starting command run with --wait --json: it must end `succeeded`. */
async function succeeded(args: string[]): Promise<TaskJson> {
  const r = await cli([...args, '--wait', '--json']);
  assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  const task = JSON.parse(r.stdout) as TaskJson;
  assert.equal(task.state, 'succeeded', JSON.stringify(task));
  return task;
}

vmTest('checkpoint → write → revert: the checkpoint\'s files, no reboot, the uptime continues from the checkpoint, fsck clean; back and forth between two checkpoints', tracker, async () => {
  const child = await forkOne('ckpt-{n}');
  const name = child.name;
  await sh(name, 'echo at-checkpoint > /root/a && sync');
  const atCheckpoint = await clock(name);

  const t0 = performance.now();
  const task = await succeeded(['vm', 'checkpoint', name, '--label', 'c1']);
  process.stderr.write(`checkpoint with memory: ${Math.round(performance.now() - t0)} ms through the CLI; guest stopped ${String(task.result?.pausedMs)} ms, state ${String(task.result?.stateBytes)} bytes\n`);
  // the guest ran on: it answers, with the same boot
  assert.equal((await clock(name)).bootId, atCheckpoint.bootId);

  await sh(name, 'echo after-checkpoint > /root/a && echo b > /root/b && sync');

  // bad input: an answer at once, nothing changed
  const unknown = await cli(['vm', 'revert', name, '--to', 'nope', '--json']);
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stdout, /"code": *"VMFORK_CHECKPOINT_NOT_FOUND"/, `${unknown.stdout}${unknown.stderr}`);
  const twice = await cli(['vm', 'checkpoint', name, '--label', 'c1', '--json']);
  assert.notEqual(twice.code, 0);
  assert.match(twice.stdout, /"code": *"VMFORK_CHECKPOINT_EXISTS"/, `${twice.stdout}${twice.stderr}`);
  assert.deepEqual((await listCheckpoints(fx.th.db, name)).map((c) => c.label), ['c1']);
  assert.equal(await sh(name, 'cat /root/a /root/b'), 'after-checkpoint\nb', 'the refused requests left the guest alone');

  const listed = await cli(['vm', 'checkpoints', name, '--json']);
  assert.equal(listed.code, 0, listed.stderr);
  const [c1] = JSON.parse(listed.stdout) as { label: string; memory: boolean; disks: { id: string; path: string }[] }[];
  assert.ok(c1 && c1.label === 'c1' && c1.memory);

  const pidBefore = (await currentProcess(fx.th.db, name))?.pid;
  const preRevert = await clock(name);
  const s0 = performance.now();
  const rtask = await succeeded(['vm', 'revert', name, '--to', 'c1']);
  const postRevert = await clock(name);
  const hostSeconds = (performance.now() - s0) / 1000;
  process.stderr.write(`revert: ${Math.round(hostSeconds * 1000)} ms through the CLI (QEMU down ${String(rtask.result?.downMs)} ms)\n`);

  assert.notEqual((await currentProcess(fx.th.db, name))?.pid, pidBefore, 'a new QEMU runs the VM');
  assert.equal((await getVm(fx.th.db, name))?.state, 'running');
  assert.equal(await sh(name, 'cat /root/a'), 'at-checkpoint', 'a has its checkpoint content');
  assert.equal(await sh(name, 'test -e /root/b; echo $?'), '1', 'b, written after the checkpoint, is absent');
  assert.equal(postRevert.bootId, atCheckpoint.bootId, 'no reboot: the same boot_id');
  // the guest's uptime continues from the checkpoint: not from zero (a boot), not from where it was before the
  // revert (had it run on, it would be at least preRevert + the seconds the host counted since)
  assert.ok(postRevert.uptime >= atCheckpoint.uptime, `uptime ${postRevert.uptime} s ≥ ${atCheckpoint.uptime} s at the checkpoint`);
  assert.ok(postRevert.uptime < preRevert.uptime + hostSeconds, `uptime ${postRevert.uptime} s < ${preRevert.uptime} + ${hostSeconds.toFixed(1)} s`);
  // the same address, reached from the network's namespace
  assert.equal(await sh(name, 'cat /sys/class/net/eth0/address'), child.mac);

  // fsck of the root fs as the checkpoint froze it, offline: the frozen layer is read-only from the cut on (the
  // running guest writes to an overlay above it), so reading its chain while QEMU runs is sound; a raw copy lets
  // e2fsck read it with no nbd module or guest involvement. fsck in the running guest could only check a mounted fs.
  const disk0 = c1.disks.find((d) => d.id === 'disk0');
  assert.ok(disk0 && existsSync(disk0.path));
  const scratch = await mkdtemp(join(tmpdir(), 'vmfork-ckpt-fsck-'));
  try {
    const raw = join(scratch, 'root.raw');
    await run('qemu-img', ['convert', '-U', '-q', '-f', 'qcow2', '-O', 'raw', disk0.path, raw]);
    const fsck = await run('e2fsck', ['-fn', raw], { allowFailure: true });
    assert.equal(fsck.code, 0, `e2fsck -fn of the checkpoint's root fs: ${fsck.stdout}${fsck.stderr}`);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }

  // checkpoints form a tree: c2 taken after the revert, then back to c1 and forward to c2 again — a revert removes
  // the layers it leaves, never one a checkpoint froze
  await sh(name, 'echo in-c2 > /root/c && sync');
  await succeeded(['vm', 'checkpoint', name, '--label', 'c2']);
  await succeeded(['vm', 'revert', name, '--to', 'c1']);
  assert.equal(await sh(name, 'cat /root/a; test -e /root/c; echo $?'), 'at-checkpoint\n1');
  await succeeded(['vm', 'revert', name, '--to', 'c2']);
  assert.equal(await sh(name, 'cat /root/a /root/c'), 'at-checkpoint\nin-c2');
  assert.equal((await clock(name)).bootId, atCheckpoint.bootId, 'still the same boot');
  assert.deepEqual((await listCheckpoints(fx.th.db, name)).map((c) => c.label), ['c1', 'c2']);
});

vmTest('a refresh (a pool child given back) forgets its checkpoints: no row, no RAM file, no layer; the child runs on a fresh overlay', tracker, async () => {
  const child = await forkOne('ckpt-rf-{n}');
  const name = child.name;
  await sh(name, 'echo of-the-last-user > /root/mine && sync');
  await succeeded(['vm', 'checkpoint', name, '--label', 'c1']);
  const dir = (await getVm(fx.th.db, name))?.dir ?? '';
  assert.ok(existsSync(join(dir, 'checkpoints', 'c1', 'state')));
  // what a pool's release does to a non-persistent child (the refresh only needs the child to belong to a pool)
  await updateVm(fx.th.db, name, { pool_name: 'ckpt-test' });
  await refreshChild(fx.th, name, fx.template);
  assert.deepEqual(await listCheckpoints(fx.th.db, name), []);
  assert.ok(!existsSync(join(dir, 'checkpoints')), 'the last user\'s RAM file is gone');
  assert.ok(!existsSync(join(dir, 'overlays')) || (await readdir(join(dir, 'overlays'))).length === 0, 'no layer of the last user is left');
  const spec = JSON.parse((await getVm(fx.th.db, name))?.spec_json ?? '{}') as { disks: { path: string }[] };
  assert.equal(spec.disks[0]?.path, join(dir, 'disk.qcow2'), 'the child runs on its first overlay, made anew');
  assert.equal(await sh(name, 'test -e /root/mine; echo $?'), '1', 'nothing of the last user');
  assert.equal(await sh(name, 'cat /proc/sys/kernel/random/boot_id'), fx.rung.record.bootId, 'forked again from the template');
});
