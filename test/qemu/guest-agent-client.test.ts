import { test } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { GuestAgentClient, GuestAgentCommandError } from '../../src/qemu/guest-agent-client.js';
import { waitUntil } from '../../src/util/index.js';
import { ScriptedPeer, hasCode, peerPerTest, type PeerConnection } from './scripted-peer.js';

const fixture = peerPerTest();

async function connected(): Promise<{ agent: GuestAgentClient; conn: PeerConnection }> {
  const agent = await GuestAgentClient.connect(fixture.peer().path);
  fixture.track(agent);
  return { agent, conn: await fixture.peer().nextConnection() };
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** The next unix/TCP client socket this process opens (node announces each one on this diagnostics channel). */
function nextClientSocket(): Promise<Socket> {
  return new Promise((resolve) => {
    const onSocket = (message: unknown): void => {
      diagnostics.unsubscribe('net.client.socket', onSocket);
      resolve((message as { socket: Socket }).socket);
    };
    diagnostics.subscribe('net.client.socket', onSocket);
  });
}

/** Resolves once the next client socket has closed: an attempt to connect was made and failed (no socket file). */
async function nextConnectFails(): Promise<void> {
  const socket = await nextClientSocket();
  await new Promise<void>((resolve) => socket.once('close', () => resolve())); // events.once would throw its 'error'
}

test('first command syncs with 0xFF + guest-sync-delimited; stale and half-read replies are discarded', async () => {
  const { agent, conn } = await connected();
  const ping = agent.ping();
  // a reply left over from a previous session, then half a line, then our sentinel and reply
  await conn.answerSync(['{"return": 4242}\n', '{"return": {"stale": tr']);
  conn.reply(await conn.expect('guest-ping'), {});
  await ping;
  assert.equal(typeof conn.received[0]?.arguments?.id, 'number');
  assert.equal(conn.received[1]?.sentinel, false);
  // in sync now: the next command goes straight out
  const host = agent.getHostName();
  conn.reply(await conn.expect('guest-get-host-name'), { 'host-name': 'template' });
  assert.equal(await host, 'template');
});

test('a sync reply carrying another id is ignored until ours arrives', async () => {
  const socket = nextClientSocket();
  const { agent, conn } = await connected();
  const client = await socket;
  let synced = false;
  const sync = agent.sync({ timeoutMs: 60_000 }).then(() => (synced = true));
  const request = await conn.expect('guest-sync-delimited');
  const read = once(client, 'data'); // the client's own 'data' listener came first: it has handled the bytes
  conn.raw(Buffer.concat([Buffer.from([0xff]), Buffer.from('{"return": 1}\n')]));
  await read;
  assert.equal(synced, false, 'a reply with another id ended the sync');
  conn.raw(Buffer.concat([Buffer.from([0xff]), Buffer.from(`{"return": ${String(request.arguments?.id)}}\n`)]));
  await sync;
});

test('a timed-out command makes the next one resync first, dropping the late reply', async () => {
  const { agent, conn } = await connected();
  const first = agent.execute('guest-info', undefined, { timeoutMs: 80 });
  await conn.answerSync();
  const infoRequest = await conn.expect('guest-info');
  await assert.rejects(first, hasCode('VMFORK_AGENT_TIMEOUT'));
  const ping = agent.execute('guest-ping');
  const resync = await conn.expect('guest-sync-delimited');
  assert.ok(resync.sentinel);
  conn.reply(infoRequest, { version: 'late' }); // the agent finally answers the abandoned command
  conn.raw(Buffer.concat([Buffer.from([0xff]), Buffer.from(`{"return": ${String(resync.arguments?.id)}}\n`)]));
  conn.reply(await conn.expect('guest-ping'), { pong: true });
  assert.deepEqual(await ping, { pong: true });
});

test('an error reply becomes VMFORK_AGENT_ERROR with class and desc', async () => {
  const { agent, conn } = await connected();
  const freeze = agent.fsfreezeFreeze();
  await conn.answerSync();
  conn.replyError(await conn.expect('guest-fsfreeze-freeze'), 'GenericError', 'Command guest-fsfreeze-freeze has been disabled');
  await assert.rejects(freeze, (err: unknown) => {
    assert.ok(err instanceof GuestAgentCommandError);
    assert.equal(err.code, 'VMFORK_AGENT_ERROR');
    assert.equal(err.errorClass, 'GenericError');
    assert.match(err.desc, /disabled/);
    assert.equal(err.details?.class, 'GenericError');
    return true;
  });
});

test('exec sends stdin as base64, polls guest-exec-status, decodes stdout/stderr and the exit code', async () => {
  const { agent, conn } = await connected();
  const run = agent.exec('/usr/bin/tee', ['/tmp/x'], { input: 'hello\n', env: { PATH: '/usr/bin' } });
  await conn.answerSync();
  const exec = await conn.expect('guest-exec');
  assert.deepEqual(exec.arguments, { path: '/usr/bin/tee', arg: ['/tmp/x'], 'capture-output': true, 'input-data': b64('hello\n'), env: ['PATH=/usr/bin'] });
  conn.reply(exec, { pid: 321 });
  conn.reply(await conn.expect('guest-exec-status'), { exited: false });
  const status = await conn.expect('guest-exec-status');
  assert.deepEqual(status.arguments, { pid: 321 });
  conn.reply(status, { exited: true, exitcode: 3, 'out-data': b64('hello\n'), 'err-data': b64('warn\n'), 'out-truncated': false });
  const result = await run;
  assert.equal(result.exitCode, 3);
  assert.equal(result.signal, undefined);
  assert.equal(result.stdout.toString(), 'hello\n');
  assert.equal(result.stderr.toString(), 'warn\n');
  assert.equal(result.truncated, false);
});

test('sh runs /bin/sh -c; a signal-killed process reports 128+signal', async () => {
  const { agent, conn } = await connected();
  const run = agent.sh('kill -9 $$');
  await conn.answerSync();
  const exec = await conn.expect('guest-exec');
  assert.deepEqual(exec.arguments, { path: '/bin/sh', arg: ['-c', 'kill -9 $$'], 'capture-output': true });
  conn.reply(exec, { pid: 7 });
  conn.reply(await conn.expect('guest-exec-status'), { exited: true, signal: 9, 'out-truncated': true });
  const result = await run;
  assert.deepEqual([result.exitCode, result.signal, result.stdout.length, result.truncated], [137, 9, 0, true]);
});

test('readFile reads in chunks until eof and closes the handle', async () => {
  const { agent, conn } = await connected();
  const content = 'abcdefghij';
  const read = agent.readFile('/etc/hostname', { chunkBytes: 4 });
  await conn.answerSync();
  const open = await conn.expect('guest-file-open');
  assert.deepEqual(open.arguments, { path: '/etc/hostname', mode: 'r' });
  conn.reply(open, 5);
  for (let offset = 0; offset < content.length; offset += 4) {
    const r = await conn.expect('guest-file-read');
    assert.deepEqual(r.arguments, { handle: 5, count: 4 });
    const part = content.slice(offset, offset + 4);
    conn.reply(r, { count: part.length, 'buf-b64': b64(part), eof: offset + 4 >= content.length });
  }
  const close = await conn.expect('guest-file-close');
  assert.deepEqual(close.arguments, { handle: 5 });
  conn.reply(close, {});
  assert.equal((await read).toString(), content);
});

test('a failed read still closes the handle', async () => {
  const { agent, conn } = await connected();
  const read = agent.readFile('/proc/weird');
  await conn.answerSync();
  conn.reply(await conn.expect('guest-file-open'), 9);
  conn.replyError(await conn.expect('guest-file-read'), 'GenericError', 'read failed');
  conn.reply(await conn.expect('guest-file-close'), {});
  await assert.rejects(read, hasCode('VMFORK_AGENT_ERROR'));
});

test('writeFile with a mode creates the file first, then writes chunks (resending a short write) and closes', async () => {
  const { agent, conn } = await connected();
  const write = agent.writeFile('/etc/secret', Buffer.from('0123456789'), { chunkBytes: 4, mode: 0o600 });
  await conn.answerSync();
  const exec = await conn.expect('guest-exec');
  assert.deepEqual((exec.arguments?.arg as string[]).slice(-2), ['/etc/secret', '0600']);
  conn.reply(exec, { pid: 1 });
  conn.reply(await conn.expect('guest-exec-status'), { exited: true, exitcode: 0 });
  const open = await conn.expect('guest-file-open');
  assert.deepEqual(open.arguments, { path: '/etc/secret', mode: 'w' });
  conn.reply(open, 2);
  const written: string[] = [];
  for (const count of [2, 4, 4]) {
    const w = await conn.expect('guest-file-write');
    written.push(Buffer.from(String(w.arguments?.['buf-b64']), 'base64').toString());
    conn.reply(w, { count, eof: false });
  }
  conn.reply(await conn.expect('guest-file-close'), {});
  await write;
  assert.deepEqual(written, ['0123', '2345', '6789']);
});

test('shutdown resolves without a reply; the next command resyncs', async () => {
  const { agent, conn } = await connected();
  const shutdown = agent.shutdown('reboot');
  await conn.answerSync();
  const request = await conn.expect('guest-shutdown');
  assert.deepEqual(request.arguments, { mode: 'reboot' });
  await shutdown;
  const ping = agent.ping();
  await conn.answerSync();
  conn.reply(await conn.expect('guest-ping'), {});
  await ping;
});

test('setTime sends the nanoseconds as an exact JSON integer', async () => {
  const { agent, conn } = await connected();
  const ns = 1_764_000_000_123_456_789n;
  const set = agent.setTime(ns);
  await conn.answerSync();
  const request = await conn.expect('guest-set-time');
  conn.reply(request, {});
  await set;
  // JSON.parse would round it: check the bytes the client wrote
  assert.match(request.line, /"time":1764000000123456789\}/);
  const again = agent.setTime();
  const bare = await conn.expect('guest-set-time');
  assert.equal(bare.arguments, undefined);
  conn.reply(bare, {});
  await again;
});

test('socket close rejects the pending command with VMFORK_AGENT_UNAVAILABLE', async () => {
  const { agent, conn } = await connected();
  const ping = agent.ping();
  await conn.expect('guest-sync-delimited');
  conn.end();
  await assert.rejects(ping, hasCode('VMFORK_AGENT_UNAVAILABLE'));
  await assert.rejects(agent.ping(), hasCode('VMFORK_AGENT_UNAVAILABLE'));
});

test('waitReady keeps retrying until the socket appears and the agent answers', async () => {
  const late = await ScriptedPeer.start({ listen: false });
  try {
    const failed = nextConnectFails();
    // a deadline the test never reaches (its own timeout bounds it): only the order of events is under test
    const ready = GuestAgentClient.waitReady(late.path, { timeoutMs: 120_000, attemptTimeoutMs: 100 });
    await failed; // one attempt found no socket: the rest is a retry
    await late.listen();
    const conn = await late.nextConnection();
    await conn.expect('guest-sync-delimited'); // the guest is still booting: nobody answers
    await conn.answerSync();
    conn.reply(await conn.expect('guest-ping'), {});
    const agent = await ready;
    fixture.track(agent);
    assert.ok(!agent.closed);
  } finally {
    await late.stop();
  }
});

test('waitReady: VMFORK_AGENT_UNAVAILABLE if the socket never appears, VMFORK_AGENT_TIMEOUT if nobody answers', async () => {
  await assert.rejects(GuestAgentClient.waitReady(join(fixture.peer().dir, 'never.sock'), { timeoutMs: 150 }), hasCode('VMFORK_AGENT_UNAVAILABLE'));
  await assert.rejects(GuestAgentClient.waitReady(fixture.peer().path, { timeoutMs: 150, attemptTimeoutMs: 50 }), hasCode('VMFORK_AGENT_TIMEOUT'));
});

test('waitReady ends at once with the signal\'s reason when it aborts: while the socket is absent, and while a connected agent stays silent', async () => {
  const absent = new AbortController();
  const failed = nextConnectFails();
  const waiting = GuestAgentClient.waitReady(join(fixture.peer().dir, 'never.sock'), { timeoutMs: 600_000, signal: absent.signal });
  await failed; // waiting for the socket to appear
  absent.abort(new Error('cancelled while booting'));
  await assert.rejects(waiting, /cancelled while booting/);
  // connected and mid-sync, in an attempt of 10 minutes (past the file's timeout): only the abort can end it, by
  // closing the connection
  const silent = new AbortController();
  const syncing = GuestAgentClient.waitReady(fixture.peer().path, { timeoutMs: 600_000, attemptTimeoutMs: 600_000, signal: silent.signal });
  const conn = await fixture.peer().nextConnection();
  let gone = false;
  void conn.closed.then(() => (gone = true));
  await conn.expect('guest-sync-delimited');
  silent.abort(new Error('cancelled while syncing'));
  await assert.rejects(syncing, /cancelled while syncing/);
  await waitUntil(() => gone, { deadlineMs: 5_000, everyMs: 20, what: 'the abandoned connection to close' });
});
