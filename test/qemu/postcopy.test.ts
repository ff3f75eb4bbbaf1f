import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { socketPair } from '../helpers/socket-pair.js';
import { loadForServing, receivePostcopy, sendPostcopy, waitPostcopyDone } from '../../src/qemu/postcopy.js';
import { peerPerTest } from './scripted-peer.js';

// Postcopy's QMP order is what makes a lazy child work (src/qemu/postcopy.ts): these tests pin it, command by
// command, against a scripted QMP peer standing for each QEMU.
const fixture = peerPerTest();

test('serving: the template state loaded with x-ignore-shared as saved, then x-ignore-shared off and postcopy-ram on, in that order', async () => {
  const loading = loadForServing(fixture.peer().path);
  const conn = await fixture.peer().nextConnection();
  await conn.negotiate();
  const got = await conn.play([
    { expect: 'migrate-set-capabilities' },
    { expect: 'migrate-incoming' },
    { expect: 'query-status', reply: { status: 'inmigrate', running: false } },
    { expect: 'query-status', reply: { status: 'paused', running: false } },
    { expect: 'migrate-set-capabilities' },
  ]);
  await loading;
  assert.deepEqual(got[0]?.arguments, { capabilities: [{ capability: 'x-ignore-shared', state: true }] });
  assert.deepEqual(got[1]?.arguments, { uri: 'fd:3' });
  assert.deepEqual(got[4]?.arguments, { capabilities: [{ capability: 'x-ignore-shared', state: false }, { capability: 'postcopy-ram', state: true }] });
});

test('sending: migrate to a socket vmfork serves, joined to the peer link, migrate-start-postcopy at once, until completed', async () => {
  const [link, far] = await socketPair();
  const sending = sendPostcopy(fixture.peer().path, link);
  const conn = await fixture.peer().nextConnection();
  await conn.negotiate();
  // the first poll is held unanswered while the stream is checked: an answer of another kind would end the wait
  const got = await conn.play([{ expect: 'migrate' }, { expect: 'migrate-start-postcopy' }, { expect: 'query-migrate', noReply: true }]);
  const uri = String((got[0]?.arguments as { uri: string }).uri);
  assert.match(uri, /^unix:.*postcopy-[0-9a-f]{8}\.sock$/);
  // QEMU's side of the stream reaches the far end of the link, and the far end's page requests come back
  const qemu = connect(uri.slice('unix:'.length));
  const atFar = new Promise<string>((resolve) => far.once('data', (d: Buffer) => resolve(d.toString())));
  qemu.write('device state');
  assert.equal(await atFar, 'device state');
  const atQemu = new Promise<string>((resolve) => qemu.once('data', (d: Buffer) => resolve(d.toString())));
  far.write('page 7');
  assert.equal(await atQemu, 'page 7');
  await conn.play([{ send: { return: { status: 'postcopy-active' }, id: got[2]?.id } }, { expect: 'query-migrate', reply: { status: 'completed' } }]);
  await sending;
  assert.ok(link.destroyed, 'the link is closed once the last page is sent');
  qemu.destroy();
  far.destroy();
});

test('receiving: postcopy-ram before migrate-incoming on a socket in the VM directory; the link joined to it; running (or paused, then cont)', async () => {
  const [link, far] = await socketPair();
  let connected = 0;
  const marks: string[] = [];
  const receiving = receivePostcopy(fixture.peer().path, async () => (connected++, link), { running: () => marks.push('running') });
  const conn = await fixture.peer().nextConnection();
  await conn.negotiate();
  const got = await conn.play([{ expect: 'migrate-set-capabilities' }]);
  assert.deepEqual(got[0]?.arguments, { capabilities: [{ capability: 'postcopy-ram', state: true }] });
  // QEMU listens where migrate-incoming says before it answers: the test does it for QEMU, then answers
  const [incoming] = await conn.play([{ expect: 'migrate-incoming', noReply: true }]);
  const uri = String((incoming?.arguments as { uri: string }).uri);
  assert.match(uri, /^unix:.*incoming-[0-9a-f]{8}\.sock$/);
  const listening = createServer();
  const qemuSide = new Promise<Socket>((resolve) => listening.once('connection', resolve));
  await new Promise<void>((resolve) => listening.listen(uri.slice('unix:'.length), () => resolve()));
  await conn.play([{ send: { return: {}, id: incoming?.id } }]);
  const q = await qemuSide;
  listening.close();
  await conn.play([
    { expect: 'query-status', reply: { status: 'inmigrate', running: false } },
    { expect: 'query-migrate', reply: { status: 'active' } },
    { expect: 'query-status', reply: { status: 'paused', running: false } },
    { expect: 'cont' },
  ]);
  await receiving;
  assert.equal(connected, 1);
  assert.deepEqual(marks, ['running']);
  const atQemu = new Promise<string>((resolve) => q.once('data', (d: Buffer) => resolve(d.toString())));
  far.write('pages');
  assert.equal(await atQemu, 'pages', 'the link still carries pages after the child runs');
  q.destroy();
  far.destroy();
});

test('the last page: completed ends the wait; a broken stream (postcopy-paused) is an error at once, not a wait', async () => {
  const ok = waitPostcopyDone(fixture.peer().path);
  const a = await fixture.peer().nextConnection();
  await a.negotiate();
  await a.play([{ expect: 'query-migrate', reply: { status: 'postcopy-active' } }, { expect: 'query-migrate', reply: { status: 'completed' } }]);
  await ok;
  const broken = waitPostcopyDone(fixture.peer().path);
  const b = await fixture.peer().nextConnection();
  await b.negotiate();
  await b.play([{ expect: 'query-migrate', reply: { status: 'postcopy-paused' } }]);
  await assert.rejects(broken, { code: 'VMFORK_QMP_ERROR', message: /postcopy-paused/ });
});
