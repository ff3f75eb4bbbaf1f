import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { endStaleExports, relayBacking, startNbdExport, startNbdRelay, writePskDir } from '../../src/qemu/nbd.js';
import { createOverlay } from '../../src/qemu/qemu-img.js';
import { withTempDir } from '../helpers/temp-dir.js';

const KEY = 'cd'.repeat(32);
const img = (...args: string[]): string => execFileSync('qemu-img', args, { encoding: 'utf8' });

test("a lazy disk's path, with real qemu-nbd: a qcow2 chain exported as the guest sees it (TLS-PSK), relayed to a unix socket, backs an overlay; the bytes read through it are the chain's; a wrong key reads nothing; the relay is a stale process its agent's successor ends", withTempDir('vmfork-relay-', async (root) => {
  // a chain: base (raw bytes) ← top (qcow2 overlay that changes its first MiB), as a template's disk on a replica
  const bytes = randomBytes(4 * 1024 * 1024);
  await writeFile(join(root, 'base.raw'), bytes);
  img('convert', '-q', '-f', 'raw', '-O', 'qcow2', join(root, 'base.raw'), join(root, 'base.qcow2'));
  await createOverlay(join(root, 'base.qcow2'), join(root, 'top.qcow2'), { backingFormat: 'qcow2' });
  execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 0 1M', join(root, 'top.qcow2')]);
  const head = Buffer.alloc(1024 * 1024, 0x5a);
  const expected = Buffer.concat([head, bytes.subarray(head.length)]);

  const source = await startNbdExport({ file: join(root, 'top.qcow2'), host: '127.0.0.1', name: 'disk0', pskDir: await writePskDir(KEY, join(root, 'src')), format: 'qcow2' });
  const agentDir = join(root, 'dst', 'run', 'nbd');
  const relay = await startNbdRelay({ host: '127.0.0.1', port: source.port, name: 'disk0', pskDir: await writePskDir(KEY, agentDir), socket: join(root, 'nbd-disk0.sock') });
  try {
    assert.equal(relayBacking(relay), `nbd+unix:///disk0?socket=${join(root, 'nbd-disk0.sock')}`);
    // the child's overlay over the relay: plain qcow2 (no subclusters: copy-on-read wants none), raw backing
    await createOverlay(relayBacking(relay), join(root, 'child.qcow2'), { backingFormat: 'raw', subclusters: false });
    const info = JSON.parse(img('info', '--output', 'json', join(root, 'child.qcow2'))) as { 'backing-filename'?: string; 'format-specific'?: { data?: { 'extended-l2'?: boolean } } };
    assert.equal(info['backing-filename'], relayBacking(relay));
    assert.equal(info['format-specific']?.data?.['extended-l2'], false);
    img('convert', '-q', '-O', 'raw', join(root, 'child.qcow2'), join(root, 'read.raw'));
    assert.ok((await readFile(join(root, 'read.raw'))).equals(expected), 'what the child reads is what a guest of the chain sees');

    // a relay holding another key gets nothing from the source
    await assert.rejects(startNbdRelay({ host: '127.0.0.1', port: source.port, name: 'disk0', pskDir: await writePskDir('ef'.repeat(32), join(root, 'bad')), socket: join(root, 'bad.sock') }));
    assert.equal(await endStaleExports(agentDir), 1, "the relay is found by its key directory and ended");
  } finally {
    await relay.stop();
    await source.stop();
  }
}));
