import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { forkChildren, type ForkBatchResult } from '../../src/fork/fork-batch.js';
import { createTemplate } from '../../src/fork/template-create.js';
import { removeTemplate } from '../../src/fork/template-manage.js';
import { sha256File } from '../../src/fork/template-files.js';
import type { TemplateRecord } from '../../src/fork/template-record.js';
import { GuestAgentClient } from '../../src/qemu/guest-agent-client.js';
import { execInNetns, listNamespaces } from '../../src/network/ip.js';
import { deleteNetwork } from '../../src/network/networks.js';
import { listLeases } from '../../src/store/networks-repo.js';
import { currentProcess } from '../../src/store/processes-repo.js';
import { availableMemoryMiB } from '../../src/vm/capacity.js';
import { destroyVm } from '../../src/vm/lifecycle.js';
import { CLI, createTestHome, ensureImage, qemuProcessesMatching, vmTest, VmTracker, type TestHome } from '../fixtures/ladder.js';

// namespaces belong to one data dir: a fresh test home needs its own prefix
process.env.VMFORK_NETNS_PREFIX = `vfk${process.pid % 10000}-`;

const T = 'tpl';
let th: TestHome;
let tracker: VmTracker;
let record: TemplateRecord;
let shaBefore: { ram: string; disk: string; state: string };
let batch: ForkBatchResult;

before(async () => {
  th = await createTestHome('fork');
  tracker = new VmTracker(th);
  await ensureImage(th);
  record = await createTemplate(th, { name: T, image: 'default', memory: '512M' });
  shaBefore = { ram: record.files.ram.sha256, disk: record.files.disk.sha256, state: record.files.state.sha256 };
});

after(async () => {
  await tracker.teardown();
  await removeTemplate(th, T).catch(() => undefined);
  await deleteNetwork(th.db, 'default').catch(() => undefined);
  assert.deepEqual(await qemuProcessesMatching(th.root), [], 'no QEMU process left behind');
  assert.ok(!(await listNamespaces()).some((n) => n.startsWith(process.env.VMFORK_NETNS_PREFIX ?? '')), 'no namespace left behind');
  await th.close();
});

async function agentOf(name: string): Promise<GuestAgentClient> {
  const proc = await currentProcess(th.db, name);
  assert.ok(proc?.agent_path);
  return GuestAgentClient.connect(proc.agent_path);
}

async function sh(name: string, script: string): Promise<{ code: number; out: string }> {
  const agent = await agentOf(name);
  try {
    const r = await agent.sh(script, { timeoutMs: 60_000 });
    return { code: r.exitCode, out: r.stdout.toString().trim() };
  } finally {
    agent.close();
  }
}

vmTest('fork 3 children: distinct identities, same boot_id as the template, no reboot', () => tracker, async () => {
  batch = await forkChildren(th, { template: T, count: 3 });
  for (const c of batch.children) tracker.track(c.name);
  assert.deepEqual(batch.failed, []);
  assert.deepEqual(batch.children.map((c) => c.name), ['tpl-1', 'tpl-2', 'tpl-3']);
  const facts = await Promise.all(
    batch.children.map(async (c) => {
      const [bootId, hostname, machineId, mac, ip] = (
        await sh(c.name, 'cat /proc/sys/kernel/random/boot_id; hostname; cat /etc/machine-id; cat /sys/class/net/eth0/address; ip -4 -o addr show dev eth0')
      ).out.split('\n');
      return { name: c.name, bootId, hostname, machineId, mac, ip };
    }),
  );
  for (const f of facts) {
    assert.equal(f.bootId, record.bootId, `${f.name}: boot_id equals the template's (no reboot)`);
    assert.equal(f.hostname, f.name);
  }
  for (const key of ['hostname', 'machineId', 'mac', 'ip'] as const) {
    assert.equal(new Set(facts.map((f) => f[key])).size, 3, `${key} unique: ${facts.map((f) => f[key]).join(' | ')}`);
  }
});

vmTest('each child answers ping on its own IP inside the namespace, and the children ping each other', () => tracker, async () => {
  const netns = batch.children[0]?.netns ?? '';
  for (const c of batch.children) {
    const r = await execInNetns(netns, 'ping', ['-c1', '-W3', c.ip], { allowFailure: true });
    assert.equal(r.code, 0, `host → ${c.name} (${c.ip}): ${r.stdout}${r.stderr}`);
  }
  const [a, b] = batch.children;
  assert.ok(a && b);
  assert.equal((await sh(a.name, `ping -c1 -W3 ${b.ip}`)).code, 0, `${a.name} → ${b.name}`);
  assert.equal((await sh(b.name, `ping -c1 -W3 ${a.ip}`)).code, 0, `${b.name} → ${a.name}`);
});

vmTest('a file written in one child is absent from its sibling; template files stay byte-identical', () => tracker, async () => {
  const [a, b] = batch.children;
  assert.ok(a && b);
  assert.equal((await sh(a.name, 'echo secret-of-a > /root/only-in-a && sync && cat /root/only-in-a')).out, 'secret-of-a');
  assert.equal((await sh(b.name, 'test -e /root/only-in-a; echo $?')).out, '1');
  // dirty 64 MiB of guest RAM in every child (tmpfs lives in guest RAM → MAP_PRIVATE copies)
  for (const c of batch.children) {
    assert.equal((await sh(c.name, 'head -c 67108864 /dev/urandom > /dev/shm/fill && echo ok')).out, 'ok');
  }
  assert.equal(await sha256File(record.files.ram.path), shaBefore.ram, 'template RAM unchanged');
  assert.equal(await sha256File(record.files.disk.path), shaBefore.disk, 'template disk unchanged');
  assert.equal(await sha256File(record.files.state.path), shaBefore.state, 'template state unchanged');
});

vmTest('bad input is refused before anything is created', () => tracker, async () => {
  const cases: [Parameters<typeof forkChildren>[1], string][] = [
    [{ template: T, count: 0 }, 'VMFORK_INVALID_ARGUMENT'],
    [{ template: T, count: 1, namePattern: 'Bad_Name{n}' }, 'VMFORK_INVALID_NAME'],
    [{ template: T, count: 2, namePattern: 'same' }, 'VMFORK_VM_EXISTS'],
    [{ template: T, count: 1, namePattern: 'tpl-1' }, 'VMFORK_VM_EXISTS'],
    [{ template: T, count: 1, network: 'nonet' }, 'VMFORK_NETWORK_NOT_FOUND'],
    [{ template: 'nope', count: 1 }, 'VMFORK_TEMPLATE_NOT_FOUND'],
    // a /24 holds 253 children; 3 are up, so 251 more cannot fit (checked before memory)
    [{ template: T, count: 251 }, 'VMFORK_NETWORK_EXHAUSTED'],
  ];
  // 200 children budget 200 × (64 + 512/4) MiB ≈ 37.5 GiB: beyond this host's memory, and the error says how many fit
  if ((await availableMemoryMiB()) < 200 * 192) cases.push([{ template: T, count: 200 }, 'VMFORK_INSUFFICIENT_MEMORY']);
  const leasesBefore = (await listLeases(th.db)).length;
  for (const [req, code] of cases) {
    await assert.rejects(forkChildren(th, req), { code }, JSON.stringify(req));
  }
  assert.equal((await listLeases(th.db)).length, leasesBefore, 'no lease taken by a refused fork');
  const inUse = await th.cli(['template', 'rm', T], { allowFailure: true });
  assert.match(inUse.stderr, /VMFORK_TEMPLATE_IN_USE/);
  const r = await th.cli(['fork', T, '--count', '0'], { allowFailure: true });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /VMFORK_INVALID_ARGUMENT/);
});

vmTest('QEMU dying mid-fork rolls back that child alone: overlay, tap, address, record', () => tracker, async () => {
  const leasesBefore = (await listLeases(th.db)).length;
  const forking = forkChildren(th, { template: T, count: 1, namePattern: 'doomed-{n}' });
  // kill the child's QEMU as soon as it is recorded: it is then loading state or running the identity exec
  const deadline = Date.now() + 60_000;
  let killed = false;
  while (!killed && Date.now() < deadline) {
    const proc = await currentProcess(th.db, 'doomed-1');
    if (proc) {
      process.kill(proc.pid, 'SIGKILL');
      killed = true;
    } else {
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  assert.ok(killed, 'the child QEMU was seen and killed');
  const result = await forking;
  assert.deepEqual(result.children, []);
  assert.equal(result.failed.length, 1);
  assert.match(result.failed[0]?.error.message ?? '', /child doomed-1/);
  assert.equal((await listLeases(th.db)).length, leasesBefore, 'its address was released');
  assert.ok(!existsSync(join(th.home.vms, 'doomed-1')), 'its overlay was removed');
  const show = await th.cli(['vm', 'show', 'doomed-1'], { allowFailure: true });
  assert.match(show.stderr, /VMFORK_VM_NOT_FOUND/);
  const taps = await execInNetns(batch.children[0]?.netns ?? '', 'ip', ['-o', 'link', 'show'], { allowFailure: true });
  assert.equal(taps.stdout.split('\n').filter((l) => / vt\d+[@:]/.test(l)).length, batch.children.length, 'only the live children have taps');
});

vmTest('destroying children frees their IPs, taps and overlays', () => tracker, async () => {
  for (const c of batch.children) {
    await destroyVm(th, c.name);
    assert.ok(!existsSync(join(th.home.vms, c.name)), `${c.name} overlay removed`);
    const taps = await execInNetns(c.netns, 'ip', ['-o', 'link', 'show', 'dev', c.tap], { allowFailure: true });
    assert.notEqual(taps.code, 0, `${c.tap} deleted`);
  }
  assert.deepEqual(await listLeases(th.db), [], 'every address released');
  const rm = await th.cli(['template', 'rm', T], { allowFailure: true });
  assert.equal(rm.code, 0, `template rm is allowed once no child uses it: ${rm.stderr}`);
});

vmTest('a changed template file is refused with VMFORK_TEMPLATE_CORRUPT', () => tracker, async () => {
  const t2 = await createTemplate(th, { name: 'tpl2', image: 'default', memory: '256M' });
  const fh = await open(t2.files.state.path, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, 100);
    b[0] = (b[0] ?? 0) ^ 0xff;
    await fh.write(b, 0, 1, 100);
  } finally {
    await fh.close();
  }
  await assert.rejects(forkChildren(th, { template: 'tpl2', count: 1 }), { code: 'VMFORK_TEMPLATE_CORRUPT' });
  const v = await th.cli(['template', 'verify', 'tpl2', '--json'], { allowFailure: true });
  assert.notEqual(v.code, 0);
  await removeTemplate(th, 'tpl2');
});

vmTest('a template create killed mid-boot is recovered: rm --force kills its parent and frees its lease', () => tracker, async () => {
  const child = spawn(process.execPath, [CLI, 'template', 'create', 'crashy', '--image', 'default', '--memory', '256M'], {
    env: { ...process.env, VMFORK_HOME: th.root },
    stdio: 'ignore',
  });
  // wait until the parent QEMU runs, then kill the creating process outright (no cleanup can run)
  const deadline = Date.now() + 60_000;
  while (!(await currentProcess(th.db, 'crashy')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const proc = await currentProcess(th.db, 'crashy');
  assert.ok(proc, 'the parent QEMU was recorded before the kill');
  const list = JSON.parse((await th.cli(['template', 'list', '--json'])).stdout) as { name: string; state: string }[];
  assert.ok(['booting', 'preparing', 'failed'].includes(list.find((t) => t.name === 'crashy')?.state ?? ''), JSON.stringify(list));
  const plain = await th.cli(['template', 'rm', 'crashy'], { allowFailure: true });
  if (plain.code !== 0) assert.match(plain.stderr, /VMFORK_TEMPLATE_NOT_READY/);
  await th.cli(['template', 'rm', 'crashy', '--force']);
  assert.deepEqual(await qemuProcessesMatching(join(th.home.templates, 'crashy')), [], 'parent QEMU killed');
  assert.equal((await listLeases(th.db)).filter((l) => l.vm_name === 'crashy').length, 0, 'its lease released');
  assert.ok(!existsSync(join(th.home.templates, 'crashy')), 'its files removed');
});
