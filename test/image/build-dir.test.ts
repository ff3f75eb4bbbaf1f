import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { acquireBuildLock, mountsBelow, publishDir } from '../../src/image/build-dir.js';
import { withTempDir } from '../helpers/temp-dir.js';

test('mountsBelow finds mounts inside a build dir, deepest first, with octal escapes decoded', async () => {
  const mountinfo = [
    '22 1 254:0 / / rw,relatime - ext4 /dev/vda rw',
    '40 22 0:5 / /var/cache/vmfork/images/.build-ab/rootfs/proc rw - proc proc rw',
    '41 22 0:6 / /var/cache/vmfork/images/.build-ab/rootfs/dev/pts rw - devpts devpts rw',
    '42 22 0:7 / /var/cache/vmfork/images/.build-ab/rootfs/my\\040dir rw - tmpfs tmpfs rw',
    '43 22 0:8 / /var/cache/vmfork/images/.build-abc/rootfs/proc rw - proc proc rw',
  ].join('\n');
  assert.deepEqual(await mountsBelow('/var/cache/vmfork/images/.build-ab', mountinfo), [
    '/var/cache/vmfork/images/.build-ab/rootfs/dev/pts',
    '/var/cache/vmfork/images/.build-ab/rootfs/my dir',
    '/var/cache/vmfork/images/.build-ab/rootfs/proc',
  ]);
});

test('publishDir: the first rename wins, the second reports it lost', withTempDir('vmfork-publish-', async (dir) => {
  for (const d of ['a', 'b']) {
    mkdirSync(join(dir, d));
    writeFileSync(join(dir, d, 'f'), d);
  }
  assert.equal(await publishDir(join(dir, 'a'), join(dir, 'final')), true);
  assert.equal(await publishDir(join(dir, 'b'), join(dir, 'final')), false);
  assert.equal(readFileSync(join(dir, 'final', 'f'), 'utf8'), 'a');
}));

test('the build lock waits for a live holder and takes over a dead one', withTempDir('vmfork-lock-', async (dir) => {
  const held = await acquireBuildLock(dir, 'k');
  let waiting!: (pid: number) => void;
  const waited = new Promise<number>((resolve) => (waiting = resolve));
  let secondTaken = false;
  const second = acquireBuildLock(dir, 'k', { pollMs: 20, onWait: (pid) => waiting(pid) }).then((lock) => ((secondTaken = true), lock));
  assert.equal(await waited, process.pid, 'the waiter names the live holder');
  assert.equal(secondTaken, false, 'a held lock is not taken');
  await held.release();
  await (await second).release();
  assert.ok(!existsSync(join(dir, '.lock-k')));

  writeFileSync(join(dir, '.lock-k'), JSON.stringify({ pid: 2 ** 22 + 1, startTime: 5 })); // a crashed build's
  const taken = await acquireBuildLock(dir, 'k', { timeoutMs: 1000 });
  assert.equal(JSON.parse(readFileSync(join(dir, '.lock-k'), 'utf8')).pid, process.pid);
  await taken.release();
}));
