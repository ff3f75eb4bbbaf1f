import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readStartTime, waitForExit } from '../../src/host/index.js';
import { createTestHome, ensureImage, qemuProcessesMatching, teardownHome, vmTest, VmTracker, type TestHome } from '../fixtures/ladder.js';
import { useLeakCheck } from '../fixtures/leak-check.js';

let th: TestHome;
let tracker: VmTracker;

before(async () => {
  th = await createTestHome('vm-boot');
  tracker = new VmTracker(th);
  await ensureImage(th);
});

// each test's VMs are gone at its end (its tracker's teardown included), or it fails
useLeakCheck(() => th, () => tracker.teardown());

after(async () => {
  await tracker.teardown();
  assert.deepEqual(await qemuProcessesMatching(th.root), [], 'no QEMU process left behind');
  assert.deepEqual(await teardownHome(th), [], 'the home left nothing behind');
});

function json<T>(stdout: string): T {
  return JSON.parse(stdout) as T;
}

vmTest('cold boot reaches the agent; exec round trip; clean stop; destroy leaves nothing', () => tracker, async () => {
  const name = tracker.track('cold1');
  const boot = json<{ name: string; bootId: string; hostname: string; secondsToAgent: number; accel: string; accelReason: string }>(
    (await th.cli(['vm', 'boot', '--image', 'default', '--name', name, '--json'])).stdout,
  );
  assert.equal(boot.name, name);
  assert.match(boot.bootId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.ok(boot.secondsToAgent > 0);
  assert.ok(boot.hostname.length > 0);
  assert.ok(['kvm', 'tcg'].includes(boot.accel) && boot.accelReason.length > 0);

  // the CLI that booted it has exited: a new process re-adopts the running QEMU
  const list = json<{ name: string; state: string }[]>((await th.cli(['vm', 'list', '--json'])).stdout);
  assert.deepEqual(list.map((v) => [v.name, v.state]), [[name, 'running']]);

  const ok = await th.cli(['vm', 'exec', name, '--', 'cat', '/proc/sys/kernel/random/boot_id']);
  assert.equal(ok.stdout.trim(), boot.bootId);
  const failing = await th.cli(['vm', 'exec', name, '--', 'sh', '-c', 'echo out; echo err >&2; exit 3'], { allowFailure: true });
  assert.equal(failing.code, 3);
  assert.equal(failing.stdout, 'out\n');
  assert.equal(failing.stderr, 'err\n');

  await th.cli(['vm', 'exec', name, '--', 'sh', '-c', 'echo kept > /root/kept && sync']);
  const stopped = json<{ state: string }>((await th.cli(['vm', 'stop', name, '--json'])).stdout);
  assert.equal(stopped.state, 'stopped');
  assert.deepEqual(await qemuProcessesMatching(join(th.home.vms, name)), [], 'QEMU exited after stop');
  assert.ok(existsSync(join(th.home.vms, name, 'disk.qcow2')), 'stop keeps the disk');
  const execStopped = await th.cli(['vm', 'exec', name, '--', 'true'], { allowFailure: true });
  assert.notEqual(execStopped.code, 0);
  assert.match(execStopped.stderr, /VMFORK_VM_STATE/);

  // start boots the same disk again: a new boot_id, and what the guest wrote before is still there
  const started = json<{ state: string; bootId: string }>((await th.cli(['vm', 'start', name, '--json'])).stdout);
  assert.equal(started.state, 'running');
  assert.notEqual(started.bootId, boot.bootId);
  assert.equal((await th.cli(['vm', 'exec', name, '--', 'cat', '/root/kept'])).stdout, 'kept\n');

  await th.cli(['vm', 'destroy', name]);
  assert.ok(!existsSync(join(th.home.vms, name)), 'destroy removes the VM dir');
  const after = await th.cli(['vm', 'show', name], { allowFailure: true });
  assert.match(after.stderr, /VMFORK_VM_NOT_FOUND/);
});

vmTest('a QEMU killed behind vmfork\'s back is noticed and cleaned up', () => tracker, async () => {
  const name = tracker.track('killed1');
  await th.cli(['vm', 'boot', '--image', 'default', '--name', name, '--json']);
  const show = json<{ process: { pid: number } }>((await th.cli(['vm', 'show', name, '--json'])).stdout);
  const startTime = await readStartTime(show.process.pid);
  assert.ok(startTime !== undefined, 'its QEMU runs');
  process.kill(show.process.pid, 'SIGKILL');
  assert.ok(await waitForExit(show.process.pid, startTime, 60_000), 'its QEMU is gone'); // the event, not 300 ms
  const after = json<{ state: string; lastError: string | null }>((await th.cli(['vm', 'show', name, '--json'])).stdout);
  assert.equal(after.state, 'stopped');
  const exec = await th.cli(['vm', 'exec', name, '--', 'true'], { allowFailure: true });
  assert.match(exec.stderr, /VMFORK_VM_STATE/);
  await th.cli(['vm', 'destroy', name]);
});

vmTest('bad input: clear codes, non-zero exit, nothing half-written', () => tracker, async () => {
  const cases: [string[], RegExp][] = [
    [['vm', 'boot', '--image', 'no-such-image', '--name', 'bad1'], /VMFORK_IMAGE_NOT_FOUND/],
    [['vm', 'boot', '--image', 'default', '--name', 'bad2', '--memory', '12Q'], /VMFORK_INVALID_SIZE/],
    [['vm', 'boot', '--image', 'default', '--name', 'Bad_Name'], /VMFORK_INVALID_NAME/],
    [['vm', 'boot', '--image', 'default', '--name', 'bad3', '--memory', '100T'], /VMFORK_INSUFFICIENT_MEMORY/],
    [['vm', 'show', 'nope'], /VMFORK_VM_NOT_FOUND/],
    [['vm', 'stop', 'nope'], /VMFORK_VM_NOT_FOUND/],
    [['vm', 'destroy', 'nope'], /VMFORK_VM_NOT_FOUND/],
  ];
  for (const [args, code] of cases) {
    const r = await th.cli(args, { allowFailure: true });
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.stderr, code, args.join(' '));
  }
  const list = json<unknown[]>((await th.cli(['vm', 'list', '--json'])).stdout);
  assert.deepEqual(list, [], 'no record left by a refused boot');
  for (const n of ['bad1', 'bad2', 'bad3']) assert.ok(!existsSync(join(th.home.vms, n)), `no dir for ${n}`);
  const j = await th.cli(['vm', 'show', 'nope', '--json'], { allowFailure: true });
  assert.equal(json<{ error: { code: string } }>(j.stdout).error.code, 'VMFORK_VM_NOT_FOUND');
});
