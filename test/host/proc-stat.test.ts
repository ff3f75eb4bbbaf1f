import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSameProcess, parseProcStat, processesWithArg, readProcStat, readStartTime, waitForExit } from '../../src/host/proc-stat.js';
import { waitUntil } from '../../src/util/index.js';

// fields 3..22 of a real stat line, with start time 4242 in field 22
const REST = 'S 1 100 100 0 -1 4194560 200 0 0 0 1 2 0 0 20 0 1 0 4242 10000 300';

test('stat parsing counts fields after the last ")", whatever the command name holds', () => {
  assert.deepEqual(parseProcStat(`123 (sleep) ${REST}`), { state: 'S', startTime: 4242 });
  assert.deepEqual(parseProcStat(`123 (a) b (c) 9 ) ${REST}`), { state: 'S', startTime: 4242 });
  assert.deepEqual(parseProcStat(`123 (with space) ${REST.replace(/^S/, 'Z')}`), { state: 'Z', startTime: 4242 });
  assert.throws(() => parseProcStat('garbage'), { code: 'VMFORK_INTERNAL' });
});

test('a real process whose name contains ") (" has a readable start time; a dead pid has none', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmfork-stat-'));
  const weird = join(dir, 'a) b (c');
  symlinkSync('/bin/sleep', weird);
  const child = spawn(weird, ['30'], { stdio: 'ignore' });
  try {
    await new Promise((r) => child.once('spawn', r));
    const pid = child.pid as number;
    assert.equal(readFileSync(`/proc/${pid}/comm`, 'utf8').trim(), 'a) b (c');
    const stat = await readProcStat(pid);
    assert.ok(stat && stat.startTime > 0);
    assert.equal(await readStartTime(pid), stat.startTime);
    assert.equal(await isSameProcess(pid, stat.startTime), true);
    assert.equal(await isSameProcess(pid, stat.startTime + 1), false, 'a different start time means another process');
    child.kill('SIGKILL');
    assert.equal(await waitForExit(pid, stat.startTime, 5_000), true);
    assert.equal(await isSameProcess(pid, stat.startTime), false);
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(await readStartTime(0), undefined);
  assert.equal(await readStartTime(2 ** 22 + 1), undefined, 'above pid_max: no such process');
});

test('processesWithArg finds a live process by one exact argument, and not once it exited', async () => {
  const marker = `vmfork-test-arg-${process.pid}-${Date.now()}`;
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30_000)', marker], { stdio: 'ignore' });
  try {
    await once(child, 'spawn');
    // exec done: the argument is on its command line (read directly, not through the function under test)
    await waitUntil(() => readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0').includes(marker), { deadlineMs: 30_000, everyMs: 10, what: 'the child to exec' });
    const found = await processesWithArg(marker);
    assert.deepEqual(found.map((p) => p.pid), [child.pid]);
    assert.deepEqual(await processesWithArg(`${marker}-other`), [], 'an exact argument, not a prefix');
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }
  assert.deepEqual(await processesWithArg(marker), []);
});
