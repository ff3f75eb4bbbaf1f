/**
 * Warm processes (QEMUs waiting at -incoming defer for a template) in real QEMU under TCG, driven through the
 * bundled `vmfork` binary (dist/cli/main.js, what package.json ships): they show in `vm list` as `warm`; a fork
 * takes one and the pool refills in the background; a child forked from one is as unique as any other (verify);
 * a warm process killed, or a fork killed while it holds one, leaves nothing behind; `template rm` removes the warm
 * processes of a template without children. The last test also forks the script-path template (image without
 * vmfork-guest) from a warm process, then removes that template (the files after this one make it again).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execInNetns } from '../../src/network/index.js';
import { waitForExit } from '../../src/host/index.js';
import { currentProcess, getVm, listLeases, type ProcessRow, type VmRow } from '../../src/store/index.js';
import { vmPathsIn } from '../../src/vm/index.js';
import type { VerifyReport } from '../../src/verify/index.js';
import { forkTracked, qemuProcessesMatching, REPO_ROOT, sharedScriptRung, useSharedRung, vmTest, type VmTracker } from '../fixtures/ladder.js';
import { run, waitUntil, type RunResult } from '../../src/util/index.js';

const fx = useSharedRung();
const tracker = (): VmTracker => fx.tracker;
const BUNDLED = join(REPO_ROOT, 'dist', 'cli', 'main.js');

async function vmfork(args: string[], options: { allowFailure?: boolean } = {}): Promise<RunResult> {
  return run(process.execPath, [BUNDLED, '--home', fx.th.root, ...args], { allowFailure: options.allowFailure ?? false, timeoutMs: 600_000 });
}

async function json<T>(args: string[]): Promise<T> {
  return JSON.parse((await vmfork([...args, '--json'])).stdout) as T;
}

interface VmRowView {
  name: string;
  state: string;
  role: string;
}
interface TemplateView {
  forkPath: string;
  warm: number;
  warmTarget: number;
  warmNames: string[];
  children: number;
}
interface ForkOut {
  children: { name: string; pid: number; ip: string; tap: string; netns: string; forkPath: string; fromWarm: boolean }[];
  failed: unknown[];
  warmTaken: number;
}

/** Waits until the template has `n` warm processes (a background refill is running); returns them. */
async function warmCount(template: string, n: number, timeoutMs = 180_000): Promise<TemplateView> {
  const show = async (): Promise<TemplateView | undefined> => {
    const view = await json<TemplateView>(['template', 'show', template]);
    return view.warm === n ? view : undefined;
  };
  return waitUntil(show, { deadlineMs: timeoutMs, everyMs: 500, what: `${n} warm processes of ${template}` });
}

/**
 * Whether a client is connected, or connecting (its server stopped: queued, not yet accepted), to the unix socket
 * at `path` (/proc/net/unix fields: … St Inode Path; 01 is listening). The server's end of a connection belongs to
 * the client's network namespace (vmfork's, this one), the listener to QEMU's: both are read.
 */
function hasClient(qemuPid: number, path: string): boolean {
  return [`/proc/self/net/unix`, `/proc/${qemuPid}/net/unix`]
    .flatMap((table) => readFileSync(table, 'utf8').split('\n'))
    .map((line) => line.trim().split(/\s+/))
    .some((f) => f[7] === path && (f[5] === '02' || f[5] === '03'));
}

/** Nothing of `name` is left: no QEMU naming its directory, no lease, no tap, no directory, no record. */
async function assertGone(name: string, dir: string, tap: string | undefined, netns: string | undefined): Promise<void> {
  assert.deepEqual(await qemuProcessesMatching(`${dir}/`), [], `no QEMU of ${name} left`);
  assert.deepEqual((await listLeases(fx.th.db)).filter((l) => l.vm_name === name), [], `${name}: address released`);
  assert.ok(!existsSync(dir), `${name}: files removed`);
  assert.equal(await getVm(fx.th.db, name), undefined, `${name}: record removed`);
  if (tap && netns) assert.notEqual((await execInNetns(netns, 'ip', ['-o', 'link', 'show', 'dev', tap], { allowFailure: true })).code, 0, `${name}: tap ${tap} deleted`);
}

vmTest('template warm: K processes at -incoming defer, listed as warm; a fork takes one, the refill replaces it, and the child verifies as unique', tracker, async (t) => {
  const t0 = performance.now();
  const at = (what: string): void => t.diagnostic(`${what} at ${Math.round(performance.now() - t0)} ms`);
  const warmed = await json<{ launched: string[]; warm: string[]; target: number }>(['template', 'warm', fx.template, '--count', '2']);
  assert.equal(warmed.target, 2);
  assert.equal(warmed.warm.length, 2);
  const before = await json<TemplateView>(['template', 'show', fx.template]);
  assert.deepEqual([before.forkPath, before.warm, before.warmTarget, before.children], ['agent', 2, 2, 0]);
  const list = await json<VmRowView[]>(['vm', 'list']);
  assert.deepEqual(list.filter((v) => before.warmNames.includes(v.name)).map((v) => [v.state, v.role]), [['warm', 'warm'], ['warm', 'warm']]);
  const oldest = before.warmNames[0] ?? '';
  const warmPid = (await currentProcess(fx.th.db, oldest))?.pid;
  assert.ok(warmPid, 'the warm QEMU runs');

  at('2 warm');
  const forked = await json<ForkOut>(['fork', fx.template, '--count', '1', '--name', 'warmc-{n}']);
  at('forked from warm');
  const child = forked.children[0];
  assert.ok(child, JSON.stringify(forked.failed));
  tracker().track(child.name);
  assert.deepEqual([forked.warmTaken, child.fromWarm, child.forkPath], [1, true, 'agent']);
  assert.equal(child.pid, warmPid, 'the child IS the oldest warm process: only migrate-incoming + cont were left');
  assert.equal((await getVm(fx.th.db, oldest)), undefined, 'the warm record became the child');
  // the fork returned before the refill: it runs detached and brings the pool back to its target
  const refilled = await warmCount(fx.template, 2);
  assert.equal(refilled.warm, 2, 'refilled in the background');
  assert.ok(!refilled.warmNames.includes(oldest));
  at('refilled');

  // a cold sibling to compare with (the engine told not to take a warm process)
  const cold = await forkTracked(fx.th, tracker(), { template: fx.template, count: 1, namePattern: 'coldc-{n}', useWarm: false });
  assert.deepEqual(cold.children.map((c) => c.fromWarm), [false]);
  const names = [child.name, ...cold.children.map((c) => c.name)];
  at('cold sibling forked');
  const verified = await vmfork(['verify', ...names, '--json'], { allowFailure: true });
  const report = JSON.parse(verified.stdout) as VerifyReport;
  assert.deepEqual(report.collisions, [], 'the warm-born child shares nothing with its sibling');
  assert.deepEqual(report.problems, []);
  assert.equal(verified.code, 0);
  at('verified');
  for (const c of report.children) {
    assert.equal(c.bootId, fx.rung.record.bootId, `${c.name}: resumed the template (no boot)`);
    assert.equal(c.hostname, c.name);
    assert.equal(c.reachable, true);
  }
  await tracker().teardown();
  await warmCount(fx.template, 2);
});

vmTest('a warm process whose QEMU is killed is failed, and the refill removes it and everything it held', tracker, async () => {
  const view = await warmCount(fx.template, 2);
  const victim = view.warmNames[0] ?? '';
  const proc = await currentProcess(fx.th.db, victim);
  const lease = (await listLeases(fx.th.db)).find((l) => l.vm_name === victim);
  assert.ok(proc && lease);
  const netns = JSON.parse((await vmfork(['network', 'show', lease.network_name, '--json'])).stdout) as { netns: string };
  process.kill(proc.pid, 'SIGKILL');
  assert.ok(await waitForExit(proc.pid, proc.start_time, 60_000), `warm QEMU ${proc.pid} exited`);
  const list = await json<VmRowView[]>(['vm', 'list']);
  assert.equal(list.find((v) => v.name === victim)?.state, 'failed', 'reconciled: its QEMU is gone');
  const refill = await json<{ removed: string[]; launched: string[]; warm: string[] }>(['template', 'warm', fx.template]);
  assert.deepEqual(refill.removed, [victim]);
  assert.equal(refill.launched.length, 1);
  assert.equal(refill.warm.length, 2);
  await assertGone(victim, join(fx.th.home.vms, victim), lease.tap, netns.netns);
});

vmTest('kill -9 of a fork that took a warm process, caught inside the fork: the next command rolls the child back whole', tracker, async () => {
  const view = await warmCount(fx.template, 2);
  // every warm QEMU stopped (SIGSTOP) before the fork starts: the fork takes one, connects its channels and then
  // waits on it, so it is provably inside the fork (the child's QEMU up and owned, nothing of it finished) when the
  // kill lands — no clock window to aim for
  const warm = await Promise.all(view.warmNames.map((n) => currentProcess(fx.th.db, n)));
  const pids = warm.map((p) => p?.pid).filter((pid): pid is number => pid !== undefined);
  assert.equal(pids.length, 2, 'both warm QEMUs recorded');
  for (const pid of pids) process.kill(pid, 'SIGSTOP');
  let cliPid: number | undefined;
  let caught: { row: VmRow; proc: ProcessRow } | undefined;
  try {
    const cli = spawn(process.execPath, [BUNDLED, '--home', fx.th.root, 'fork', fx.template, '--count', '1', '--name', 'midcfg-{n}'], { stdio: 'ignore' });
    cliPid = cli.pid;
    const exited = new Promise<NodeJS.Signals | null>((resolve) => cli.once('exit', (_code, signal) => resolve(signal)));
    caught = await waitUntil(
      async () => {
        if (cli.exitCode !== null) throw new Error(`the fork ended by itself (code ${cli.exitCode}) before it was caught inside`);
        const row = await getVm(fx.th.db, 'midcfg-1');
        const proc = await currentProcess(fx.th.db, 'midcfg-1');
        if (row?.state !== 'forking' || !proc) return undefined;
        // vmfork-guest's channel (connected before cont) and then QMP (for the resume): it now waits for QEMU
        return hasClient(proc.pid, vmPathsIn(row.dir).guest) && hasClient(proc.pid, proc.qmp_path) ? { row, proc } : undefined;
      },
      { deadlineMs: 120_000, everyMs: 20, what: 'the fork to take a warm process (renamed, forking) and connect its channels' },
    );
    assert.ok(pids.includes(caught.proc.pid), 'the child IS one of the warm processes');
    cli.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL', 'the fork was killed, it did not end by itself');
  } finally {
    for (const pid of pids) process.kill(pid, 'SIGCONT');
  }
  tracker().track('midcfg-1');
  const { row, proc } = caught;
  const lease = (await listLeases(fx.th.db)).find((l) => l.vm_name === 'midcfg-1');
  assert.ok(lease);
  const listed = await vmfork(['vm', 'list', '--json']);
  assert.match(listed.stderr, new RegExp(`^vmfork: healed VM midcfg-1 \\(forking; vmfork pid ${cliPid} died\\): rolled back: QEMU ${proc.pid} stopped; ${lease.ip.replaceAll('.', '\\.')} on default \\(tap ${lease.tap}\\) released; files and record removed$`, 'm'));
  const netns = JSON.parse((await vmfork(['network', 'show', lease.network_name, '--json'])).stdout) as { netns: string };
  await assertGone('midcfg-1', row.dir, lease.tap, netns.netns);
});

vmTest('script path: a template of the image without vmfork-guest warms and forks through qemu-ga; template rm takes its warm processes along', tracker, async () => {
  const script = await sharedScriptRung();
  const view = await json<TemplateView>(['template', 'show', script.template]);
  assert.equal(view.forkPath, 'script');
  await json(['template', 'warm', script.template, '--count', '1']);
  const forked = await json<ForkOut>(['fork', script.template, '--count', '1', '--name', 'scriptc-{n}']);
  const child = forked.children[0];
  assert.ok(child, JSON.stringify(forked.failed));
  tracker().track(child.name);
  assert.deepEqual([child.forkPath, child.fromWarm], ['script', true]);
  const v = await vmfork(['verify', child.name, '--json'], { allowFailure: true });
  assert.equal(v.code, 0, v.stdout);
  const refilled = await warmCount(script.template, 1);
  const warmDirs = refilled.warmNames.map((n) => join(fx.th.home.vms, n));
  const refused = await vmfork(['template', 'rm', script.template], { allowFailure: true });
  assert.match(refused.stderr, /VMFORK_TEMPLATE_IN_USE: .*scriptc-1/, 'refused because of the child, not its warm process');
  await tracker().teardown();
  const removed = await vmfork(['template', 'rm', script.template]);
  assert.match(removed.stdout, /removed/);
  for (const dir of warmDirs) assert.deepEqual(await qemuProcessesMatching(`${dir}/`), [], 'its warm QEMU is gone');
  const left = await json<VmRowView[]>(['vm', 'list']);
  assert.deepEqual(left.filter((r) => refilled.warmNames.includes(r.name)), []);
  // the shared template keeps its warm processes for the next file: remove them, leaving the rung as it was
  await json(['template', 'warm', fx.template, '--count', '0']);
  assert.equal((await json<TemplateView>(['template', 'show', fx.template])).warm, 0);
});
