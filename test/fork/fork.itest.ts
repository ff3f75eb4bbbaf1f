import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { ForkBatchOptions } from '../../src/fork/index.js';
import { availableMemoryMiB } from '../../src/host/index.js';
import { execInNetns } from '../../src/network/index.js';
import { currentProcess, getVm, listLeases } from '../../src/store/index.js';
import { sha256File, waitUntil } from '../../src/util/index.js';
import { CLI, forkTracked, guestShell, qemuProcessesMatching, useSharedRung, vmTest, type VmTracker } from '../fixtures/ladder.js';

// one tracker per file: each test destroys its own children at its end (tracker.teardown), so none depends on another
const fx = useSharedRung();
const tracker = (): VmTracker => fx.tracker;

async function sh(name: string, script: string): Promise<{ code: number; out: string }> {
  const r = await guestShell(fx.th.db, name, script);
  return { code: r.code, out: r.out };
}

async function fork(options: Omit<ForkBatchOptions, 'template'>): Promise<Awaited<ReturnType<typeof forkTracked>>> {
  const batch = await forkTracked(fx.th, tracker(), { template: fx.template, ...options });
  assert.deepEqual(batch.failed, [], JSON.stringify(batch.failed, null, 2));
  return batch;
}

vmTest('3 children: distinct identities, the template\'s boot_id, reachable, isolated; destroy frees everything', tracker, async () => {
  const shaBefore = { ram: fx.rung.record.files.ram.sha256, disk: fx.rung.record.files.disk.sha256, state: fx.rung.record.files.state.sha256 };
  const batch = await fork({ count: 3, namePattern: 'iso-{n}' });
  assert.deepEqual(batch.children.map((c) => c.name), ['iso-1', 'iso-2', 'iso-3']);
  const facts = await Promise.all(
    batch.children.map(async (c) => {
      const [bootId, hostname, machineId, mac, ip] = (
        await sh(c.name, 'cat /proc/sys/kernel/random/boot_id; hostname; cat /etc/machine-id; cat /sys/class/net/eth0/address; ip -4 -o addr show dev eth0')
      ).out.split('\n');
      return { name: c.name, bootId, hostname, machineId, mac, ip };
    }),
  );
  for (const f of facts) {
    assert.equal(f.bootId, fx.rung.record.bootId, `${f.name}: boot_id equals the template's (no reboot)`);
    assert.equal(f.hostname, f.name);
  }
  for (const key of ['hostname', 'machineId', 'mac', 'ip'] as const) {
    assert.equal(new Set(facts.map((f) => f[key])).size, 3, `${key} unique: ${facts.map((f) => f[key]).join(' | ')}`);
  }
  const [a, b] = batch.children;
  assert.ok(a && b);
  for (const c of batch.children) {
    const r = await execInNetns(c.netns, 'ping', ['-c1', '-W3', c.ip], { allowFailure: true });
    assert.equal(r.code, 0, `host → ${c.name} (${c.ip}): ${r.stdout}${r.stderr}`);
  }
  assert.equal((await sh(a.name, `ping -c1 -W3 ${b.ip}`)).code, 0, `${a.name} → ${b.name}`);
  assert.equal((await sh(b.name, `ping -c1 -W3 ${a.ip}`)).code, 0, `${b.name} → ${a.name}`);

  assert.equal((await sh(a.name, 'echo secret-of-a > /root/only-in-a && sync && cat /root/only-in-a')).out, 'secret-of-a');
  assert.equal((await sh(b.name, 'test -e /root/only-in-a; echo $?')).out, '1');
  // dirty 64 MiB of guest RAM in every child (tmpfs lives in guest RAM → MAP_PRIVATE copies)
  for (const c of batch.children) assert.equal((await sh(c.name, 'head -c 67108864 /dev/urandom > /dev/shm/fill && echo ok')).out, 'ok');
  assert.equal(await sha256File(fx.rung.record.files.ram.path), shaBefore.ram, 'template RAM unchanged');
  assert.equal(await sha256File(fx.rung.record.files.disk.path), shaBefore.disk, 'template disk unchanged');
  assert.equal(await sha256File(fx.rung.record.files.state.path), shaBefore.state, 'template state unchanged');

  const inUse = await fx.th.cli(['template', 'rm', fx.template], { allowFailure: true });
  assert.match(inUse.stderr, /VMFORK_TEMPLATE_IN_USE/);
  for (const c of batch.children) {
    await fx.th.cli(['vm', 'destroy', c.name]);
    assert.ok(!existsSync(join(fx.th.home.vms, c.name)), `${c.name} overlay removed`);
    const tap = await execInNetns(c.netns, 'ip', ['-o', 'link', 'show', 'dev', c.tap], { allowFailure: true });
    assert.notEqual(tap.code, 0, `${c.tap} deleted`);
  }
  assert.deepEqual((await listLeases(fx.th.db)).filter((l) => l.vm_name.startsWith('iso-')), [], 'every address released');
});

vmTest('bad input is refused before anything is created', tracker, async () => {
  await fork({ count: 1, namePattern: 'taken-{n}' });
  const free = 253 - (await listLeases(fx.th.db)).length;
  const cases: [Omit<ForkBatchOptions, 'template'> & { template?: string }, string][] = [
    [{ count: 0 }, 'VMFORK_INVALID_ARGUMENT'],
    [{ count: 1, namePattern: 'Bad_Name{n}' }, 'VMFORK_INVALID_NAME'],
    [{ count: 2, namePattern: 'same' }, 'VMFORK_VM_EXISTS'],
    [{ count: 1, namePattern: 'taken-1' }, 'VMFORK_VM_EXISTS'],
    [{ count: 1, network: 'nonet' }, 'VMFORK_NETWORK_NOT_FOUND'],
    [{ template: 'nope', count: 1 }, 'VMFORK_TEMPLATE_NOT_FOUND'],
    // a /24 holds 253 children: one more than are free cannot fit (checked before memory)
    [{ count: free + 1 }, 'VMFORK_NETWORK_EXHAUSTED'],
  ];
  // 200 children budget 200 × (64 + 512/4) MiB ≈ 37.5 GiB: beyond this host's memory, and the error says how many fit
  if ((await availableMemoryMiB()) < 200 * 192) cases.push([{ count: 200 }, 'VMFORK_INSUFFICIENT_MEMORY']);
  const leasesBefore = (await listLeases(fx.th.db)).length;
  for (const [req, code] of cases) {
    await assert.rejects(forkTracked(fx.th, tracker(), { template: fx.template, ...req }), { code }, JSON.stringify(req));
  }
  assert.equal((await listLeases(fx.th.db)).length, leasesBefore, 'no lease taken by a refused fork');
  const r = await fx.th.cli(['fork', fx.template, '--count', '0'], { allowFailure: true });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /VMFORK_INVALID_ARGUMENT/);
  await tracker().teardown();
});

vmTest('QEMU dying mid-fork rolls back that child alone: overlay, tap, address, record', tracker, async () => {
  const leasesBefore = (await listLeases(fx.th.db)).length;
  const forking = forkTracked(fx.th, tracker(), { template: fx.template, count: 1, namePattern: 'doomed-{n}' });
  // kill the child's QEMU as soon as it is recorded: it is then loading state or running the identity exec (the
  // fork cannot end without it, so the kill lands inside the fork)
  const proc = await waitUntil(() => currentProcess(fx.th.db, 'doomed-1'), { deadlineMs: 120_000, everyMs: 5, what: 'the child QEMU of doomed-1 to be recorded' });
  process.kill(proc.pid, 'SIGKILL');
  const result = await forking;
  assert.deepEqual(result.children, []);
  assert.equal(result.failed.length, 1);
  // the context is added once: the registry message appears once, then the child, then the cause
  const message = result.failed[0]?.error.message ?? '';
  assert.match(message, /: child doomed-1: /);
  assert.equal(message.split(': child doomed-1: ')[1]?.includes(message.split(': child doomed-1: ')[0] ?? '§'), false, `no repeated message: ${message}`);
  assert.equal((await listLeases(fx.th.db)).length, leasesBefore, 'its address was released');
  assert.ok(!existsSync(join(fx.th.home.vms, 'doomed-1')), 'its overlay was removed');
  const show = await fx.th.cli(['vm', 'show', 'doomed-1'], { allowFailure: true });
  assert.match(show.stderr, /VMFORK_VM_NOT_FOUND/);
});

vmTest('two `vmfork fork T --count 2` started together in one data dir end with four children', tracker, async () => {
  const forks = await Promise.all([1, 2].map(() => fx.th.cli(['fork', fx.template, '--count', '2', '--name', 'pair-{n}', '--json'], { allowFailure: true })));
  const results = forks.map((r) => {
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as { children: { name: string; ip: string }[]; failed: unknown[] };
  });
  const children = results.flatMap((r) => r.children);
  for (const c of children) tracker().track(c.name);
  assert.deepEqual(results.map((r) => r.failed), [[], []]);
  assert.deepEqual(children.map((c) => c.name).sort(), ['pair-1', 'pair-2', 'pair-3', 'pair-4']);
  assert.equal(new Set(children.map((c) => c.ip)).size, 4, 'four addresses');
  const list = JSON.parse((await fx.th.cli(['vm', 'list', '--json'])).stdout) as { name: string; state: string }[];
  assert.deepEqual(list.filter((v) => v.name.startsWith('pair-')).map((v) => v.state), ['running', 'running', 'running', 'running']);
  await tracker().teardown();
});

vmTest('kill -9 of `vmfork fork` in flight: the next command rolls the child back and says so', tracker, async () => {
  const cli = spawn(process.execPath, [CLI, 'fork', fx.template, '--count', '1', '--name', 'orphan-{n}'], { env: { ...process.env, VMFORK_HOME: fx.th.root }, stdio: 'ignore' });
  const exited = new Promise((resolve) => cli.once('exit', (_code, signal) => resolve(signal)));
  // kill the fork while its child is forking: QEMU runs (detached) with the template's identity, the row says forking.
  // The child's QEMU is stopped (SIGSTOP) once recorded, so the fork cannot finish before the kill lands
  const proc = await waitUntil(() => currentProcess(fx.th.db, 'orphan-1'), { deadlineMs: 120_000, everyMs: 20, what: 'the child QEMU of orphan-1 to be recorded' });
  process.kill(proc.pid, 'SIGSTOP');
  try {
    assert.equal((await getVm(fx.th.db, 'orphan-1'))?.state, 'forking');
    assert.equal(cli.exitCode, null, 'the fork is still in flight');
    cli.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL', 'the fork was killed, it did not end by itself');
  } finally {
    process.kill(proc.pid, 'SIGCONT');
  }
  tracker().track('orphan-1');
  const list = await fx.th.cli(['vm', 'list', '--json']);
  assert.match(list.stderr, new RegExp(`^vmfork: healed VM orphan-1 \\(forking; vmfork pid ${cli.pid} died\\): rolled back: QEMU ${proc.pid} stopped; 10\\.\\d+\\.\\d+\\.\\d+ on default \\(tap vt\\d+\\) released; files and record removed$`, 'm'));
  const rows = JSON.parse(list.stdout) as { name: string; state: string }[];
  assert.deepEqual(rows.filter((r) => r.state === 'forking' || r.name === 'orphan-1'), [], 'no forking child is left');
  assert.deepEqual(await qemuProcessesMatching(join(fx.th.home.vms, 'orphan-1')), [], 'no QEMU of it is left');
  assert.deepEqual((await listLeases(fx.th.db)).filter((l) => l.vm_name === 'orphan-1'), [], 'its address is free');
  assert.ok(!existsSync(join(fx.th.home.vms, 'orphan-1')), 'its overlay is gone');
});

vmTest('a changed template file is refused with VMFORK_TEMPLATE_CORRUPT (and accepted again once restored)', tracker, async () => {
  const flip = async (): Promise<void> => {
    const fh = await open(fx.rung.record.files.state.path, 'r+');
    try {
      const b = Buffer.alloc(1);
      await fh.read(b, 0, 1, 100);
      b[0] = (b[0] ?? 0) ^ 0xff;
      await fh.write(b, 0, 1, 100);
    } finally {
      await fh.close();
    }
  };
  await flip();
  try {
    await assert.rejects(forkTracked(fx.th, tracker(), { template: fx.template, count: 1, namePattern: 'corrupt-{n}' }), { code: 'VMFORK_TEMPLATE_CORRUPT' });
    const v = await fx.th.cli(['template', 'verify', fx.template, '--json'], { allowFailure: true });
    assert.notEqual(v.code, 0);
    assert.equal((JSON.parse(v.stdout) as { files: { role: string; ok: boolean }[] }).files.find((f) => f.role === 'state')?.ok, false);
  } finally {
    await flip(); // the shared template serves the other tests: its bytes are put back exactly
  }
  assert.equal((await fx.th.cli(['template', 'verify', fx.template, '--json'])).code, 0);
});

vmTest('a template create killed mid-boot is rolled back by the next command: parent QEMU, lease, files, records', tracker, async () => {
  const cli = spawn(process.execPath, [CLI, 'template', 'create', 'crashy', '--image', 'default', '--memory', '256M'], {
    env: { ...process.env, VMFORK_HOME: fx.th.root },
    stdio: 'ignore',
  });
  const exited = new Promise((resolve) => cli.once('exit', resolve));
  // the parent QEMU recorded: the create is booting it (minutes under TCG), far from done when the kill lands
  await waitUntil(() => currentProcess(fx.th.db, 'crashy'), { deadlineMs: 120_000, everyMs: 50, what: 'the parent QEMU of crashy to be recorded' });
  cli.kill('SIGKILL');
  await exited;
  const list = await fx.th.cli(['template', 'list', '--json']);
  assert.match(list.stderr, new RegExp(`^vmfork: healed template crashy \\((creating|booting|preparing); vmfork pid ${cli.pid} died\\): creation rolled back`, 'm'));
  assert.ok(!(JSON.parse(list.stdout) as { name: string }[]).some((t) => t.name === 'crashy'));
  assert.deepEqual(await qemuProcessesMatching(join(fx.th.home.templates, 'crashy')), [], 'parent QEMU killed');
  assert.deepEqual((await listLeases(fx.th.db)).filter((l) => l.vm_name === 'crashy'), [], 'its lease released');
  assert.ok(!existsSync(join(fx.th.home.templates, 'crashy')), 'its files removed');
  assert.equal(await getVm(fx.th.db, 'crashy'), undefined, 'the parent VM record is gone too');
});
