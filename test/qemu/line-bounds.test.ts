import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestAgentClient } from '../../src/qemu/guest-agent-client.js';
import { QmpClient } from '../../src/qemu/qmp-client.js';
import { waitUntil } from '../../src/util/index.js';
import { hasCode, peerPerTest, type PeerConnection } from './scripted-peer.js';

// Bounds of the QMP and qemu-ga line readers (issue 13): line cap, junk lines in a row drop the connection with a
// *_PROTOCOL code, rate-limited logging, qemu-ga's inbox of unsolicited replies capped.

const fixture = peerPerTest();

interface Captured {
  warn: string[];
  debug: string[];
  logger: { debug(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
}

function capture(): Captured {
  const c: Captured = { warn: [], debug: [], logger: { debug: (_o, msg) => c.debug.push(msg ?? ''), warn: (_o, msg) => c.warn.push(msg ?? '') } };
  return c;
}

async function qmp(options: Parameters<typeof QmpClient.connect>[1] = {}): Promise<{ client: QmpClient; conn: PeerConnection }> {
  const clientP = QmpClient.connect(fixture.peer().path, options);
  const conn = await fixture.peer().nextConnection();
  await conn.negotiate();
  return { client: fixture.track(await clientP), conn };
}

async function agent(options: Parameters<typeof GuestAgentClient.connect>[1] = {}): Promise<{ agent: GuestAgentClient; conn: PeerConnection }> {
  const client = fixture.track(await GuestAgentClient.connect(fixture.peer().path, options));
  return { agent: client, conn: await fixture.peer().nextConnection() };
}

test('QMP: junk lines in a row drop the connection with VMFORK_QMP_PROTOCOL; the command waiting fails with it', async () => {
  const log = capture();
  const { client, conn } = await qmp({ logger: log.logger, maxJunkLines: 5 });
  const closed = new Promise((resolve) => client.on('close', resolve));
  const status = client.execute('query-status');
  await conn.expect('query-status');
  for (let i = 0; i < 5; i++) conn.raw(`junk ${i}\r\n`);
  await assert.rejects(status, hasCode('VMFORK_QMP_PROTOCOL'));
  assert.ok(hasCode('VMFORK_QMP_PROTOCOL')(await closed));
  assert.ok(client.closed);
  await conn.closed; // the client hung up
  assert.equal(log.warn.length, 1, 'one warn per minute, not one per line');
  assert.equal(log.debug.length, 4);
  await assert.rejects(client.execute('query-status'), hasCode('VMFORK_QMP_UNAVAILABLE'));
});

test('QMP: a good reply starts the count again, so occasional junk never drops a connection', async () => {
  const { client, conn } = await qmp({ maxJunkLines: 3 });
  for (let round = 0; round < 4; round++) {
    const status = client.execute('query-status');
    const request = await conn.expect('query-status');
    conn.raw('junk\r\n{"return": {}, "id": 999999}\r\n'); // a line that is not JSON and a reply nobody asked for
    conn.reply(request, { status: 'running', running: true });
    assert.deepEqual(await status, { status: 'running', running: true });
  }
  assert.equal(client.closed, false);
});

test('QMP: a line past the cap is junk at once, even one that never ends', async () => {
  const { client, conn } = await qmp({ maxLineBytes: 1024, maxJunkLines: 1 });
  const closed = new Promise((resolve) => client.on('close', resolve));
  conn.raw(Buffer.alloc(64 * 1024, 0x7b)); // 64 KiB of '{' and no newline
  assert.ok(hasCode('VMFORK_QMP_PROTOCOL')(await closed));
});

test('qemu-ga: junk lines in a row drop the connection with VMFORK_AGENT_PROTOCOL', async () => {
  const log = capture();
  const { agent: client, conn } = await agent({ logger: log.logger, maxJunkLines: 4, warnEveryMs: 0 });
  const ping = client.ping();
  await conn.answerSync();
  await conn.expect('guest-ping');
  conn.raw('not json\n[1,2]\n{"neither": "reply"}\n"a string"\n');
  await assert.rejects(ping, hasCode('VMFORK_AGENT_PROTOCOL'));
  assert.ok(client.closed);
  assert.equal(log.warn.length, 4, 'warnEveryMs: 0 warns for every line');
  await assert.rejects(client.ping(), hasCode('VMFORK_AGENT_UNAVAILABLE'));
});

test('qemu-ga: unsolicited replies are kept up to the inbox cap, the oldest dropped first and counted as junk', async () => {
  const log = capture();
  const { agent: client, conn } = await agent({ logger: log.logger });
  const ping = client.ping();
  await conn.answerSync();
  conn.reply(await conn.expect('guest-ping'), {});
  await ping;
  for (let i = 0; i < 10; i++) conn.send({ return: i });
  const dropped = 'guest agent: inbox full, dropped the oldest unsolicited reply';
  await waitUntil(() => [...log.warn, ...log.debug].filter((m) => m === dropped).length === 2 || undefined, { deadlineMs: 10_000, everyMs: 5, what: 'two replies dropped from the inbox' });
  // the next command discards the 8 still queued (each one junk: 10 in a row, under the default 16) and goes on
  const host = client.getHostName();
  conn.reply(await conn.expect('guest-get-host-name'), { 'host-name': 'h' });
  assert.equal(await host, 'h');
  assert.equal([...log.warn, ...log.debug].filter((m) => m === 'guest agent: discarded an unsolicited reply').length, 8);
  assert.equal(log.warn.length, 1, 'ten junk lines, one warn');
});

test('qemu-ga: the inbox holds at most one maximal line of bytes; the newest reply is always kept', async () => {
  const log = capture();
  const { agent: client, conn } = await agent({ logger: log.logger, maxLineBytes: 100 });
  const ping = client.ping();
  await conn.answerSync();
  conn.reply(await conn.expect('guest-ping'), {});
  await ping;
  conn.send({ return: 'x'.repeat(60) }); // ~75 bytes each: two do not fit in 100
  conn.send({ return: 'y'.repeat(60) });
  const dropped = 'guest agent: inbox full, dropped the oldest unsolicited reply';
  await waitUntil(() => [...log.warn, ...log.debug].includes(dropped) || undefined, { deadlineMs: 10_000, everyMs: 5, what: 'a reply dropped from the inbox' });
  const host = client.getHostName();
  conn.reply(await conn.expect('guest-get-host-name'), { 'host-name': 'h' });
  assert.equal(await host, 'h');
  assert.equal([...log.warn, ...log.debug].filter((m) => m === 'guest agent: discarded an unsolicited reply').length, 1);
});
