import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { isSameProcess, readStartTime } from '../../src/host/proc-stat.js';
import { adoptProcess, launchQemu, readPidfile, terminateProcess } from '../../src/qemu/qemu-process.js';
import { withTempDir } from '../helpers/temp-dir.js';

/**
 * Spawns a program the way launchQemu does (own session, unref'd) and returns pid + start time. With `ready`, its
 * stdout is a pipe and this waits for the program to print that line first (its own sign it is set up).
 */
async function detached(cmd: string, args: string[], ready?: string): Promise<{ pid: number; startTime: number }> {
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', ready ? 'pipe' : 'ignore', 'ignore'] });
  await new Promise((r) => child.once('spawn', r));
  if (ready && child.stdout) {
    const [line] = await once(createInterface({ input: child.stdout }), 'line');
    assert.equal(line, ready);
    child.stdout.destroy();
  }
  child.unref();
  const pid = child.pid as number;
  const startTime = await readStartTime(pid);
  assert.ok(startTime !== undefined);
  return { pid, startTime };
}

test('a detached process runs in its own session; a wrong start time reads as reuse and is never signalled', async () => {
  const p = await detached('sleep', ['30']);
  try {
    const fields = readFileSync(`/proc/${p.pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    assert.equal(Number(fields[3]), p.pid, 'session id (field 6) is its own pid');
    const qmpPath = '/nonexistent/qmp.sock';
    assert.equal(await adoptProcess({ pid: p.pid, startTime: p.startTime + 1, qmpPath }), 'reused');
    assert.equal(await terminateProcess(p.pid, p.startTime + 1, { graceMs: 100 }), 'not-running');
    assert.equal(await isSameProcess(p.pid, p.startTime), true, 'still running: nothing was signalled');
    assert.equal(await adoptProcess({ pid: p.pid, startTime: p.startTime, qmpPath }), 'unresponsive', 'alive but no QMP');
    assert.equal(await terminateProcess(p.pid, p.startTime, { graceMs: 5_000 }), 'terminated');
    assert.equal(await isSameProcess(p.pid, p.startTime), false);
    assert.equal(await adoptProcess({ pid: p.pid, startTime: p.startTime, qmpPath }), 'gone');
    assert.equal(await terminateProcess(p.pid, p.startTime), 'not-running');
  } finally {
    if (await isSameProcess(p.pid, p.startTime)) process.kill(p.pid, 'SIGKILL');
  }
});

test('a process that ignores SIGTERM is killed after the grace period', async () => {
  const p = await detached(process.execPath, ['-e', "process.on('SIGTERM', () => {}); console.log('handler installed'); setInterval(() => {}, 1000)"], 'handler installed');
  try {
    const t0 = performance.now();
    assert.equal(await terminateProcess(p.pid, p.startTime, { graceMs: 300 }), 'killed');
    // a lower bound only (load can make the wait longer, never shorter): SIGKILL came no sooner than the grace
    assert.ok(performance.now() - t0 >= 300);
  } finally {
    if (await isSameProcess(p.pid, p.startTime)) process.kill(p.pid, 'SIGKILL');
  }
});

test('pidfiles: a number, or undefined when missing, empty or garbage', withTempDir('vmfork-proc-', async (dir) => {
  const f = join(dir, 'qemu.pid');
  assert.equal(await readPidfile(f), undefined);
  writeFileSync(f, '1234\n');
  assert.equal(await readPidfile(f), 1234);
  writeFileSync(f, '');
  assert.equal(await readPidfile(f), undefined);
  writeFileSync(f, '12ab');
  assert.equal(await readPidfile(f), undefined);
}));

test('a program that exits before its QMP socket appears is VM_START_FAILED with its stderr tail', withTempDir('vmfork-proc-', async (dir) => {
  const stderrLog = join(dir, 'qemu.log');
  writeFileSync(stderrLog, 'an older run said this\n');
  await assert.rejects(
    launchQemu({ binary: '/bin/sh', argv: ['-c', 'echo "boom: bad option" >&2; exit 3'], qmpSocket: join(dir, 'qmp.sock'), stderrLog }),
    (err: Error & { code?: string; details?: Record<string, unknown> }) => {
      assert.equal(err.code, 'VMFORK_VM_START_FAILED');
      assert.match(err.message, /exited with code 3: boom: bad option/);
      assert.doesNotMatch(err.message, /older run/, 'only this launch\'s output is quoted');
      return true;
    },
  );
  await assert.rejects(launchQemu({ binary: 'no-such-qemu', argv: [], qmpSocket: join(dir, 'q.sock'), stderrLog }), { code: 'VMFORK_QEMU_MISSING' });
}));
