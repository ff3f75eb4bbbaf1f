import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { socketPair } from '../helpers/socket-pair.js';
import type { TLSSocket } from 'node:tls';
import { dialPsk, listenPsk } from '../../src/host-agent/psk-link.js';
import { splice } from '../../src/qemu/postcopy.js';

test('an agents\' TLS-PSK link: a peer with the key gets a link both ways; a peer with another key gets none and the listener never sees it', async () => {
  const key = randomBytes(32);
  const links: TLSSocket[] = [];
  const listener = await listenPsk('127.0.0.1', key, (link) => {
    links.push(link);
    link.on('data', (d: Buffer) => link.write(Buffer.concat([Buffer.from('echo:'), d])));
  });
  try {
    const link = await dialPsk('127.0.0.1', listener.port, key);
    assert.match(link.getCipher().name, /PSK/);
    const answer = new Promise<string>((resolve) => link.once('data', (d: Buffer) => resolve(d.toString())));
    link.write('page 42');
    assert.equal(await answer, 'echo:page 42');
    link.destroy();
    await assert.rejects(dialPsk('127.0.0.1', listener.port, randomBytes(32), 5_000), (err: Error & { code?: string }) => err.code === 'VMFORK_HOST_JOB');
    assert.equal(links.length, 1, 'the peer without the key never reached the listener');
  } finally {
    for (const l of links) l.destroy();
    listener.close();
  }
});

const next = (s: Socket): Promise<string> => new Promise((resolve) => s.once('data', (d: Buffer) => resolve(d.toString())));

test('splice joins two streams both ways (a QEMU socket and an agents\' link) and ends both when one end closes', async () => {
  const [qemu, qemuSide] = await socketPair();
  const [peer, peerSide] = await socketPair();
  const joined = splice(qemuSide, peerSide);
  const atPeer = next(peer);
  qemu.write('device state');
  assert.equal(await atPeer, 'device state');
  const atQemu = next(qemu);
  peer.write('page request');
  assert.equal(await atQemu, 'page request');
  qemu.destroy();
  await joined;
  assert.ok(qemuSide.destroyed && peerSide.destroyed, 'both joined ends closed');
  peer.destroy();
});
