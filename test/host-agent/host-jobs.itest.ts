import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { run, waitUntil } from '../../src/util/index.js';
import { isRoot } from '../network/itest-helpers.js';
import { TEST_HOOKS } from '../fixtures/ladder.js';
import { startDatacenter, type TestDatacenter, type TestHost } from '../fixtures/test-hosts.js';
import { withTempDir } from '../helpers/temp-dir.js';

const skip = isRoot() ? false : 'needs root (network namespaces, PostgreSQL as its user, QEMU)';
const AGENT = ['--heartbeat-seconds', '0.5', '--lost-after-seconds', '3'];
const BOOT_MS = 10 * 60_000;

/** QEMU processes running in a test host's namespace, by the VM directory their command line names. */
async function qemuIn(host: TestHost, vm: string): Promise<number[]> {
  const pids = (await run('ip', ['netns', 'pids', host.netns])).stdout.split(/\s+/).filter(Boolean).map(Number);
  return pids.filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('qemu') && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`/vms/${vm}/`);
    } catch {
      return false;
    }
  });
}

async function json(dc: TestDatacenter, host: TestHost, args: string[], timeoutMs = 60_000): Promise<Record<string, unknown>> {
  const r = await dc.cli(host, [...args, '--json'], { timeoutMs });
  assert.equal(r.code, 0, `vmfork ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

test("a host's VM steps run as jobs on its queue, only by its agent: boot, stop, start and destroy sent from another host; an agent killed mid-boot is replaced and the queue runs the boot again, with one QEMU at the end", { skip },
  withTempDir('vmfork-jobs-', async (root) => {
    const dc = await startDatacenter(root, ['h1', 'h2']);
    let problems: string[] = [];
    try {
      const [h1, h2] = dc.hosts as [TestHost, TestHost];
      await dc.startAgent(h1, AGENT);
      const h2Agent = await dc.startAgent(h2, AGENT);
      const built = await dc.cli(h1, ['image', 'build', '--name', 'default', '--hooks', TEST_HOOKS], { timeoutMs: 1_800_000 });
      assert.equal(built.code, 0, built.stderr);

      // refused before anything is written: an unknown host
      const unknown = await dc.cli(h1, ['vm', 'boot', '--host', 'h9', '--image', 'default', '--name', 'nowhere']);
      assert.notEqual(unknown.code, 0);
      assert.match(unknown.stderr, /VMFORK_HOST_NOT_FOUND/);
      assert.equal((await dc.cli(h1, ['vm', 'show', 'nowhere'])).code, 1);

      // sent from h1, run by h2's agent: the QEMU is in h2's namespace, its files in h2's data dir
      const booted = await json(dc, h1, ['vm', 'boot', '--host', 'h2', '--image', 'default', '--name', 'on-h2'], BOOT_MS);
      assert.equal(booted.host, 'h2');
      assert.equal(booted.name, 'on-h2');
      assert.equal((await qemuIn(h2, 'on-h2')).length, 1);
      assert.deepEqual(await qemuIn(h1, 'on-h2'), []);
      const listed = (await json(dc, h1, ['vm', 'show', 'on-h2'])) as { host?: string; state?: string; dir?: string };
      assert.deepEqual([listed.host, listed.state], ['h2', 'running']);

      // the CLI waits as long as the stop may take (its guest gets 60 s before QEMU is told to quit)
      const stopped = await json(dc, h1, ['vm', 'stop', 'on-h2'], BOOT_MS);
      assert.equal(stopped.state, 'stopped');
      assert.deepEqual(await qemuIn(h2, 'on-h2'), []);
      const started = await json(dc, h1, ['vm', 'start', 'on-h2'], BOOT_MS);
      assert.equal(started.state, 'running');
      assert.equal((await qemuIn(h2, 'on-h2')).length, 1);

      // the agent dies mid-boot: its successor heals the half-booted VM, fails the job it had taken, and the queue's
      // retry boots it again; the sender just waits for the answer
      const second = dc.cli(h1, ['vm', 'boot', '--host', 'h2', '--image', 'default', '--name', 'second', '--json'], { timeoutMs: BOOT_MS });
      await waitUntil(async () => (await qemuIn(h2, 'second')).length > 0 || undefined, { deadlineMs: BOOT_MS, everyMs: 100, what: "h2's agent to launch second's QEMU" });
      h2Agent.child.kill('SIGKILL');
      await h2Agent.exited;
      const h2Again = await dc.startAgent(h2, AGENT);
      const answered = await second;
      assert.equal(answered.code, 0, answered.stderr);
      assert.equal((JSON.parse(answered.stdout) as { name: string }).name, 'second');
      assert.equal((await qemuIn(h2, 'second')).length, 1, 'one QEMU for the VM booted twice');
      assert.match(h2Again.output(), /second/);
      assert.match(h2Again.output(), /1 job taken by a predecessor that died: failed, to be run again/);
      // the queue shows it: the boot taken twice, completed; the stop, start and first boot once each
      const jobs = (await dc.cli(h1, ['host', 'jobs', 'h2', '--json']));
      assert.equal(jobs.code, 0, jobs.stderr);
      const seen = (JSON.parse(jobs.stdout) as { op: string; state: string; attempts: number }[]).map((j) => [j.op, j.state, j.attempts]);
      assert.deepEqual(seen, [['vm-boot', 'completed', 2], ['vm-start', 'completed', 1], ['vm-stop', 'completed', 1], ['vm-boot', 'completed', 1]]);

      // the database restarts while h2's agent boots a VM: the agent's heartbeats and the sender's looks fail for a
      // moment, the boot goes on, its answer is written once the database is back, and the sender gets it
      const third = dc.cli(h1, ['vm', 'boot', '--host', 'h2', '--image', 'default', '--name', 'third', '--json'], { timeoutMs: BOOT_MS });
      await waitUntil(async () => (await qemuIn(h2, 'third')).length > 0 || undefined, { deadlineMs: BOOT_MS, everyMs: 100, what: "h2's agent to launch third's QEMU" });
      await dc.restartDb();
      const thirdAnswer = await third;
      assert.equal(thirdAnswer.code, 0, thirdAnswer.stderr);
      assert.equal((JSON.parse(thirdAnswer.stdout) as { name: string }).name, 'third');
      assert.equal((await qemuIn(h2, 'third')).length, 1);
      assert.equal(h2Again.child.exitCode, null, "h2's agent outlived the restart");
      assert.equal((await qemuIn(h2, 'on-h2')).length, 1);

      // h2 is lost (its agent killed, its VMs' QEMUs left running, one of them dies meanwhile): its VMs are unknown
      // to the fleet until its agent is back and says what became of each
      h2Again.child.kill('SIGKILL');
      await h2Again.exited;
      const stateOf = async (vm: string): Promise<string> => String((await json(dc, h1, ['vm', 'show', vm])).state);
      await waitUntil(async () => ((await stateOf('on-h2')) === 'unknown' ? true : undefined), { deadlineMs: 60_000, everyMs: 250, what: "h2's VMs to become unknown once h2 is lost" });
      assert.deepEqual([await stateOf('second'), await stateOf('third')], ['unknown', 'unknown']);
      for (const pid of await qemuIn(h2, 'third')) process.kill(pid, 'SIGKILL');
      await waitUntil(async () => ((await qemuIn(h2, 'third')).length === 0 ? true : undefined), { deadlineMs: 30_000, everyMs: 100, what: "third's QEMU to exit" });
      const h2Back = await dc.startAgent(h2, AGENT);
      assert.match(h2Back.output(), /VM on-h2 was unknown while the host was lost: running/);
      assert.match(h2Back.output(), /VM third was unknown while the host was lost: stopped/);
      assert.deepEqual([await stateOf('on-h2'), await stateOf('second'), await stateOf('third')], ['running', 'running', 'stopped']);

      for (const vm of ['on-h2', 'second', 'third']) {
        const gone = await json(dc, h1, ['vm', 'destroy', vm]);
        assert.equal(gone.destroyed, true);
        assert.deepEqual(await qemuIn(h2, vm), []);
      }
    } finally {
      problems = await dc.close();
    }
    assert.deepEqual(problems, [], 'the datacenter left nothing behind');
  }));
