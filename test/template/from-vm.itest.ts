import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { getTemplate, getVm } from '../../src/store/index.js';
import { waitUntil } from '../../src/util/index.js';
import { destroyVm } from '../../src/vm/index.js';
import type { VerifyReport } from '../../src/verify/index.js';
import { CLI, forkTracked, guestShell, qemuProcessesMatching, sharedScriptRung, useSharedRung, vmTest, type VmTracker } from '../fixtures/ladder.js';

// a running child of the shared rung becomes template fv-t2 (the template tree: fv-t2 stands on the rung's template)
const fx = useSharedRung();
const tracker = (): VmTracker => fx.tracker;
const T2 = 'fv-t2';

async function sh(name: string, script: string): Promise<string> {
  const r = await guestShell(fx.th.db, name, script);
  assert.equal(r.code, 0, `${name}: ${script}: ${r.err}`);
  return r.out;
}

/** What a fork of the child must show: its file, its background process (same pid, same start), its boot. */
async function carried(name: string, pid: string): Promise<{ file: string; proc: string; bootId: string }> {
  const [file, proc, bootId] = (await sh(name, `cat /root/from-vm.txt; cut -d' ' -f22 /proc/${pid}/stat; cat /proc/sys/kernel/random/boot_id`)).split('\n');
  return { file: file ?? '', proc: proc ?? '', bootId: bootId ?? '' };
}

vmTest('template create --from-vm: forks of a running child carry its file and running process, each with its own identity; the tree is enforced', tracker, async () => {
  const t0 = performance.now();
  const at = (what: string): void => void process.stderr.write(`from-vm: ${what} at ${Math.round(performance.now() - t0)} ms\n`);
  const batch = await forkTracked(fx.th, tracker(), { template: fx.template, count: 1, namePattern: 'fv-{n}' });
  assert.deepEqual(batch.failed, [], JSON.stringify(batch.failed));
  const child = batch.children[0]?.name ?? '';
  // a file, and a process that outlives the exec that started it (its own session, no pipe to qemu-ga)
  const pid = await sh(child, 'echo made-in-the-child > /root/from-vm.txt; setsid sleep 86400 </dev/null >/dev/null 2>&1 & echo $!');
  assert.match(pid, /^\d+$/);
  const before = await carried(child, pid);
  assert.equal(before.file, 'made-in-the-child');
  at('child forked and written');

  try {
    // bad input changes nothing: not a child, an unknown VM, a taken name, both sources at once
    for (const [args, code] of [
      [['--from-vm', 'no-such-vm'], 'VMFORK_VM_NOT_FOUND'],
      [['--from-vm', child, '--image', 'default'], 'VMFORK_INVALID_ARGUMENT'],
    ] as const) {
      const r = await fx.th.cli(['template', 'create', T2, ...args, '--json'], { allowFailure: true });
      assert.notEqual(r.code, 0);
      assert.match(r.stdout, new RegExp(`"code": *"${code}"`), `${r.stdout}${r.stderr}`);
    }
    const taken = await fx.th.cli(['template', 'create', fx.template, '--from-vm', child, '--json'], { allowFailure: true });
    assert.match(taken.stdout, /"code": *"VMFORK_TEMPLATE_EXISTS"/, taken.stdout);
    assert.equal(await getTemplate(fx.th.db, T2), undefined, 'refusals made no template');

    const made = await fx.th.cli(['template', 'create', T2, '--from-vm', child, '--json']);
    const record = JSON.parse(made.stdout) as { state: string; forkPath: string; bootId: string; fromVm: { vm: string; template: string; pausedMs: number; steps: unknown } };
    assert.equal(record.state, 'ready');
    assert.deepEqual({ vm: record.fromVm.vm, template: record.fromVm.template }, { vm: child, template: fx.template });
    assert.equal(record.forkPath, fx.rung.record.forkPath ?? 'script', 'the new template is cut on its parent template\'s path');
    assert.equal(record.bootId, before.bootId);
    at(`template made (child stood still ${record.fromVm.pausedMs} ms: ${JSON.stringify(record.fromVm.steps)})`);

    // the child ran on, untouched: same boot, file and process, and it answers
    assert.equal((await getVm(fx.th.db, child))?.state, 'running');
    assert.deepEqual(await carried(child, pid), before);

    const forks = await forkTracked(fx.th, tracker(), { template: T2, count: 2, namePattern: 'fv2-{n}' });
    assert.deepEqual(forks.failed, [], JSON.stringify(forks.failed));
    const names = forks.children.map((c) => c.name);
    at('2 children of the new template forked');
    for (const name of names) {
      // the fork resumes the child's exact state: the file, the same process (pid and start time), no reboot
      assert.deepEqual(await carried(name, pid), before, `${name} carries the child's state`);
    }
    const verified = await fx.th.cli(['verify', child, ...names, '--json'], { allowFailure: true });
    const report = JSON.parse(verified.stdout) as VerifyReport;
    assert.deepEqual(report.collisions, [], 'the child and its template\'s children share no identity');
    assert.deepEqual(report.problems, []);
    assert.equal(verified.code, 0);
    for (const c of report.children) assert.equal(c.hostname, c.name);
    assert.equal(new Set(report.children.map((c) => c.machineId)).size, 3, 'three machine-ids');
    assert.equal(new Set(report.children.map((c) => c.mac)).size, 3, 'three MACs');
    at('verified');

    // the tree: list shows the parent; the parent cannot go while the new template stands on it
    const list = JSON.parse((await fx.th.cli(['template', 'list', '--json'])).stdout) as { name: string; parent: string | null }[];
    assert.equal(list.find((t) => t.name === T2)?.parent, fx.template);
    assert.equal(list.find((t) => t.name === fx.template)?.parent, null);
    await destroyVm(fx.th, child);
    const refused = await fx.th.cli(['template', 'rm', fx.template, '--json'], { allowFailure: true });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stdout, /"code": *"VMFORK_TEMPLATE_IN_USE"/, refused.stdout);
    assert.match(refused.stdout, new RegExp(T2), refused.stdout);
    assert.equal((await getTemplate(fx.th.db, fx.template))?.state, 'ready', 'the refused removal left the rung alone');

    for (const name of names) await destroyVm(fx.th, name);
    await fx.th.cli(['template', 'rm', T2]);
    const dir = `${fx.th.home.templates}/${T2}`;
    assert.equal(existsSync(dir), false, 'the template\'s files are gone');
    at('children and template removed');
  } finally {
    // whatever failed above: the template goes before the leak check looks (its children went with the tracker)
    await tracker().teardown();
    if (await getTemplate(fx.th.db, T2)) await fx.th.cli(['template', 'rm', T2, '--force'], { allowFailure: true });
  }
});

vmTest('template create --from-vm on the script path (an image without vmfork-guest): prepared through qemu-ga, its fork carries the child\'s state', tracker, async () => {
  const rung = await sharedScriptRung();
  const name = 'fv-ts';
  const batch = await forkTracked(fx.th, tracker(), { template: rung.template, count: 1, namePattern: 'fvs-{n}' });
  assert.deepEqual(batch.failed, [], JSON.stringify(batch.failed));
  const child = batch.children[0]?.name ?? '';
  const pid = await sh(child, 'echo made-in-the-child > /root/from-vm.txt; setsid sleep 86400 </dev/null >/dev/null 2>&1 & echo $!');
  const before = await carried(child, pid);
  try {
    const made = JSON.parse((await fx.th.cli(['template', 'create', name, '--from-vm', child, '--json'])).stdout) as { forkPath: string; fromVm: { template: string } };
    assert.equal(made.forkPath, 'script');
    assert.equal(made.fromVm.template, rung.template);
    const forks = await forkTracked(fx.th, tracker(), { template: name, count: 1, namePattern: 'fvs2-{n}' });
    assert.deepEqual(forks.failed, [], JSON.stringify(forks.failed));
    const fork = forks.children[0]?.name ?? '';
    assert.deepEqual(await carried(fork, pid), before);
    assert.deepEqual(await carried(child, pid), before, 'the child ran on');
    const verified = await fx.th.cli(['verify', child, fork, '--json'], { allowFailure: true });
    const report = JSON.parse(verified.stdout) as VerifyReport;
    assert.deepEqual([report.collisions, report.problems, verified.code], [[], [], 0], verified.stdout);
    for (const vm of [fork, child]) await destroyVm(fx.th, vm);
    await fx.th.cli(['template', 'rm', name]);
  } finally {
    await tracker().teardown();
    if (await getTemplate(fx.th.db, name)) await fx.th.cli(['template', 'rm', name, '--force'], { allowFailure: true });
  }
});

vmTest('a --from-vm creation killed while its child stands still: the next command continues the child and rolls the template back', tracker, async () => {
  const batch = await forkTracked(fx.th, tracker(), { template: fx.template, count: 1, namePattern: 'fvk-{n}' });
  assert.deepEqual(batch.failed, [], JSON.stringify(batch.failed));
  const child = batch.children[0]?.name ?? '';
  const pid = await sh(child, 'echo made-in-the-child > /root/from-vm.txt; setsid sleep 86400 </dev/null >/dev/null 2>&1 & echo $!');
  const before = await carried(child, pid);
  const name = 'fv-tk';
  const creator = spawn(process.execPath, [CLI, 'template', 'create', name, '--from-vm', child], { env: { ...process.env, VMFORK_HOME: fx.th.root }, stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => creator.once('exit', (_code, signal) => resolve(signal)));
  try {
    // the child stands still for seconds (the RAM move); the creator is stopped the moment the store says so
    await waitUntil(async () => (await getVm(fx.th.db, child))?.state === 'paused', { deadlineMs: 300_000, everyMs: 20, what: `${child} held still for the new template` });
    creator.kill('SIGSTOP');
    creator.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');
    assert.equal((await getVm(fx.th.db, child))?.state, 'paused', 'killed while the child stood still');

    const healed = await fx.th.cli(['template', 'list', '--json']);
    assert.match(healed.stderr, new RegExp(`VM ${child}, held still for it, continued`), healed.stderr);
    assert.equal((JSON.parse(healed.stdout) as { name: string }[]).some((t) => t.name === name), false, 'the half-made template is rolled back');
    assert.equal((await getVm(fx.th.db, child))?.state, 'running');
    assert.deepEqual(await carried(child, pid), before, 'the child runs on with its file and process');
    assert.deepEqual(await qemuProcessesMatching(`${fx.th.home.templates}/${name}/`), [], 'no parent QEMU of the half-made template is left');
    await destroyVm(fx.th, child);
  } finally {
    if (creator.exitCode === null && creator.signalCode === null) creator.kill('SIGKILL');
    await tracker().teardown();
  }
});
