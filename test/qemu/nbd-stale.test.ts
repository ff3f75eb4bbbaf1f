import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { endStaleExports, startNbdExport, writePskDir } from '../../src/qemu/nbd.js';
import { readProcStat } from '../../src/host/index.js';

/** Running: a process that exists and is not a zombie (a daemon's reaper may not have collected it yet). */
async function running(pid: number): Promise<boolean> {
  const stat = await readProcStat(pid).catch(() => undefined);
  return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X';
}
import { withTempDir } from '../helpers/temp-dir.js';

const KEY = 'ab'.repeat(32);

test("a dead agent's exports are ended by its successor: its qemu-nbd processes under its own key directory, and the directory; another agent's are left alone", withTempDir('vmfork-nbd-', async (root) => {
  const file = join(root, 'disk.raw');
  await writeFile(file, Buffer.alloc(1024 * 1024));
  const mine = join(root, 'a', 'run', 'nbd');
  const theirs = join(root, 'b', 'run', 'nbd');
  const dead = await startNbdExport({ file, host: '127.0.0.1', name: 'disk0', pskDir: await writePskDir(KEY, mine) });
  const other = await startNbdExport({ file, host: '127.0.0.1', name: 'disk0', pskDir: await writePskDir(KEY, theirs) });
  try {
    assert.ok(await running(dead.pid), 'the export runs');
    assert.equal(await endStaleExports(mine), 1);
    assert.equal(await running(dead.pid), false, 'its qemu-nbd is gone');
    assert.deepEqual(await readdir(mine), [], 'and its key directory');
    assert.ok(await running(other.pid), "another agent's export still runs");
    assert.equal(await endStaleExports(mine), 0, 'nothing left to end');
    assert.equal(await endStaleExports(join(root, 'never-made')), 0);
  } finally {
    await dead.stop();
    await other.stop();
  }
  assert.ok(existsSync(theirs));
}));
