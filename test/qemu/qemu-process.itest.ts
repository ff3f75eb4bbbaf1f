import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildQemuArgv } from '../../src/qemu/qemu-argv.js';
import { QmpClient } from '../../src/qemu/qmp-client.js';
import { adoptProcess, launchQemu, readPidfile, terminateProcess, type LaunchedProcess } from '../../src/qemu/qemu-process.js';
import { isSameProcess } from '../../src/host/proc-stat.js';
import { run } from '../../src/util/exec.js';
import { parseVmSpec, type VmSpec, type VmSpecInput } from '../../src/spec/vm-spec.js';

/** A diskless TCG machine with every non-disk piece of a template: file RAM, agent port, vmgenid, serial, pidfile. */
function spec(dir: string, extra: Partial<VmSpecInput> = {}): VmSpec {
  return parseVmSpec({
    name: 'itest',
    accel: 'tcg',
    tbSizeMiB: 16,
    memoryMiB: 64,
    memory: { kind: 'file', path: join(dir, 'ram.mem'), share: true },
    agentSocket: join(dir, 'agent.sock'),
    qmpSocket: join(dir, 'qmp.sock'),
    serialLog: join(dir, 'serial.log'),
    pidfile: join(dir, 'qemu.pid'),
    vmgenid: '8f3b6a52-6f0e-4b4e-9a1e-4b5ad8d5b1c1',
    uuid: '11111111-2222-4333-8444-555555555555',
    ...extra,
  });
}

/** Runs `fn` in a temp dir whose name has a comma (exercising the argv escaping) and stops any QEMU it launched. */
function withQemu(fn: (dir: string, started: LaunchedProcess[]) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vmfork-qemu,proc-'));
    const started: LaunchedProcess[] = [];
    try {
      await fn(dir, started);
    } finally {
      for (const p of started) await terminateProcess(p.pid, p.startTime, { graceMs: 2_000 });
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test('real QEMU launched detached from built argv: alive, adoptable, pidfile agrees, terminated, then gone', withQemu(async (dir, started) => {
  const s = spec(dir);
  const p = await launchQemu({ argv: buildQemuArgv(s), qmpSocket: s.qmpSocket, stderrLog: join(dir, 'qemu.log') });
  started.push(p);
  assert.equal(readFileSync(`/proc/${p.pid}/comm`, 'utf8').trim(), 'qemu-system-x86');
  assert.equal(await readPidfile(join(dir, 'qemu.pid')), p.pid);
  const record = { pid: p.pid, startTime: p.startTime, qmpPath: s.qmpSocket };
  assert.equal(await adoptProcess(record), 'alive');
  assert.equal(await adoptProcess({ ...record, startTime: p.startTime - 1 }), 'reused');
  // QEMU serves one QMP client at a time: while another holds the monitor the process is alive but cannot answer
  const holder = await QmpClient.connect(s.qmpSocket);
  try {
    assert.equal(await adoptProcess(record, { qmpTimeoutMs: 500 }), 'unresponsive');
  } finally {
    holder.close();
  }
  assert.equal(await adoptProcess(record), 'alive');
  assert.equal(await terminateProcess(p.pid, p.startTime, { graceMs: 10_000 }), 'terminated');
  assert.equal(await isSameProcess(p.pid, p.startTime), false);
  assert.equal(await adoptProcess(record), 'gone');
}));

test('QEMU under a network namespace keeps its own pid (ip netns exec execs into it)', { skip: process.getuid?.() !== 0 && 'needs root' }, withQemu(async (dir, started) => {
  const ns = `vmfork-itest-${process.pid}`;
  await run('ip', ['netns', 'add', ns]);
  try {
    const s = spec(dir, { memory: { kind: 'anonymous' } });
    const p = await launchQemu({ argv: buildQemuArgv(s), qmpSocket: s.qmpSocket, stderrLog: join(dir, 'qemu.log'), netns: ns });
    started.push(p);
    assert.equal(readFileSync(`/proc/${p.pid}/comm`, 'utf8').trim(), 'qemu-system-x86');
    assert.notEqual(readlinkSync(`/proc/${p.pid}/ns/net`), readlinkSync('/proc/self/ns/net'), 'runs in the namespace');
    assert.equal(await adoptProcess({ pid: p.pid, startTime: p.startTime, qmpPath: s.qmpSocket }), 'alive');
    assert.equal(await terminateProcess(p.pid, p.startTime), 'terminated');
  } finally {
    await run('ip', ['netns', 'delete', ns]);
  }
}));

test('QEMU failing after its QMP socket exists (a missing disk) is still VM_START_FAILED with its message', withQemu(async (dir) => {
  const s = spec(dir, { disks: [{ id: 'disk0', path: join(dir, 'missing.qcow2'), format: 'qcow2' }] });
  await assert.rejects(launchQemu({ argv: buildQemuArgv(s), qmpSocket: s.qmpSocket, stderrLog: join(dir, 'qemu.log') }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'VMFORK_VM_START_FAILED');
    assert.match(err.message, /missing\.qcow2.*No such file/);
    return true;
  });
}));
