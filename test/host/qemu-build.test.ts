import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readQemuBuild } from '../../src/host/index.js';
import { withTempDir } from '../helpers/temp-dir.js';

/** A stand-in for qemu-system-x86_64 that counts its runs: the probe's cache is about not running QEMU. */
function fakeQemu(dir: string): { binary: string; runs: () => number } {
  const binary = join(dir, 'qemu-system-x86_64');
  const count = join(dir, 'runs');
  writeFileSync(count, '');
  writeFileSync(
    binary,
    `#!/bin/sh\necho run >> ${count}\nif [ "$1" = --version ]; then echo 'QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)'; else echo 'q35                  Standard PC (Q35 + ICH9, 2009) (alias of pc-q35-7.2)'; fi\n`,
  );
  chmodSync(binary, 0o755);
  return { binary, runs: () => readFileSync(count, 'utf8').split('\n').filter(Boolean).length };
}

test('the QEMU build probe is remembered across processes while the binary is the same file, and redone when it changes', withTempDir('vmfork-qemu-build-', async (dir) => {
  const qemu = fakeQemu(dir);
  const cacheFile = join(dir, 'run', 'qemu-build.json');
  const want = { build: 'QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)', machine: 'pc-q35-7.2' };
  assert.deepEqual(await readQemuBuild({ binary: qemu.binary, cacheFile }), want);
  assert.equal(qemu.runs(), 2, '--version and -machine help');
  assert.deepEqual(await readQemuBuild({ binary: qemu.binary, cacheFile }), want);
  assert.equal(qemu.runs(), 2, 'the second call read the cache');
  // an upgrade replaces or rewrites the binary: its mtime/ctime (or inode) moves, and the probe runs again
  utimesSync(qemu.binary, new Date(), new Date(Date.now() - 60_000));
  assert.deepEqual(await readQemuBuild({ binary: qemu.binary, cacheFile }), want);
  assert.equal(qemu.runs(), 4);
  writeFileSync(cacheFile, '{"key":"other","build":{"build":"x","machine":"y"}}');
  assert.deepEqual(await readQemuBuild({ binary: qemu.binary, cacheFile }), want, 'a cache for another binary is ignored');
  assert.deepEqual(await readQemuBuild({ binary: qemu.binary }), want, 'no cache file: always probed');
  assert.equal(qemu.runs(), 8);
}));
