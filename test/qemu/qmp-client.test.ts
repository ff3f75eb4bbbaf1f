import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { QmpClient, QmpCommandError, type QmpEvent } from '../../src/qemu/qmp-client.js';
import type { VmforkError } from '../../src/errors.js';
import { createLogger } from '../../src/util/log.js';
import { waitUntil } from '../../src/util/index.js';
import { QMP_GREETING, delay, hasCode, peerPerTest, type PeerConnection } from './scripted-peer.js';

const fixture = peerPerTest();

function captureLogger(): { warnings: string[]; debugs: string[]; logger: { debug(obj: object, msg?: string): void; warn(obj: object, msg?: string): void } } {
  const warnings: string[] = [];
  const debugs: string[] = [];
  return { warnings, debugs, logger: { debug: (_obj, msg) => debugs.push(msg ?? ''), warn: (_obj, msg) => warnings.push(msg ?? '') } };
}

/** Connects a client while the peer greets and negotiates. */
async function connected(options: Parameters<typeof QmpClient.connect>[1] = {}): Promise<{ client: QmpClient; conn: PeerConnection }> {
  const clientP = QmpClient.connect(fixture.peer().path, options);
  const conn = await fixture.peer().nextConnection();
  await conn.negotiate();
  const client = await clientP;
  fixture.track(client);
  return { client, conn };
}

test('reads the greeting, negotiates capabilities without enabling any, exposes the version', async () => {
  const { client, conn } = await connected({ logger: createLogger(undefined) }); // the app's pino logger fits
  assert.deepEqual(client.version.qemu, { major: 7, minor: 2, micro: 22 });
  assert.equal(client.greeting.QMP.version.package, QMP_GREETING.QMP.version.package);
  const caps = conn.received[0];
  assert.ok(caps);
  assert.equal(caps.execute, 'qmp_capabilities');
  assert.equal(caps.arguments, undefined);
  assert.notEqual(caps.id, undefined);
});

test('one command on the wire at a time, in call order, replies matched by id', async () => {
  const { client, conn } = await connected();
  const results = [client.execute('a'), client.execute('b', { x: 1 }), client.execute('c')];
  const ids = new Set();
  for (const name of ['a', 'b', 'c']) {
    const request = await conn.expect(name);
    await delay(20);
    assert.equal(conn.pending, 0, 'the next command must wait for this reply');
    ids.add(request.id);
    conn.reply(request, `${name}-result`);
  }
  assert.deepEqual(await Promise.all(results), ['a-result', 'b-result', 'c-result']);
  assert.equal(ids.size, 3);
  assert.deepEqual(conn.received[2]?.arguments, { x: 1 });
});

test('events reach name and wildcard subscribers; unsubscribe stops them; waitForEvent filters', async () => {
  const { client, conn } = await connected();
  const stops: QmpEvent[] = [];
  const all: string[] = [];
  const offStop = client.on('STOP', (e) => stops.push(e));
  client.on('*', (e) => all.push(e.event));
  const resumed = client.waitForEvent('MIGRATION', { timeoutMs: 1_000, predicate: (e) => e.data?.status === 'completed' });
  await conn.play([{ event: 'STOP' }, { event: 'MIGRATION', data: { status: 'active' } }, { event: 'MIGRATION', data: { status: 'completed' }, afterMs: 10 }]);
  const event = await resumed;
  assert.deepEqual(event.data, { status: 'completed' });
  assert.equal(typeof event.timestamp.seconds, 'number');
  offStop();
  conn.event('STOP');
  // the wildcard subscriber seeing it means every subscriber was given it
  await waitUntil(() => all.length === 4, { deadlineMs: 10_000, everyMs: 5, what: 'the last STOP to reach the wildcard subscriber' });
  assert.equal(stops.length, 1);
  assert.deepEqual(all, ['STOP', 'MIGRATION', 'MIGRATION', 'STOP']);
  await assert.rejects(client.waitForEvent('RESUME', { timeoutMs: 30 }), hasCode('VMFORK_QMP_TIMEOUT'));
});

test('a command times out; its late reply is discarded, not given to the next command', async () => {
  const { client, conn } = await connected();
  const slow = client.execute('slow', undefined, { timeoutMs: 50 });
  const next = client.execute('next');
  const slowRequest = await conn.expect('slow');
  await assert.rejects(slow, hasCode('VMFORK_QMP_TIMEOUT'));
  const nextRequest = await conn.expect('next');
  conn.reply(slowRequest, 'late');
  conn.reply(nextRequest, 'mine');
  assert.equal(await next, 'mine');
});

test('a command that times out while queued is never sent', async () => {
  const { client, conn } = await connected();
  const first = client.execute('first');
  const queued = client.execute('queued', undefined, { timeoutMs: 30 });
  const request = await conn.expect('first');
  await assert.rejects(queued, (err: unknown) => hasCode('VMFORK_QMP_TIMEOUT')(err) && /never sent/.test((err as Error).message));
  conn.reply(request, 1);
  assert.equal(await first, 1);
  await delay(20);
  assert.equal(conn.pending, 0);
});

test('an error reply becomes QmpCommandError with class and desc', async () => {
  const { client, conn } = await connected();
  const result = client.execute('device_del', { id: 'nope' });
  conn.replyError(await conn.expect('device_del'), 'DeviceNotFound', "Device 'nope' not found");
  await assert.rejects(result, (err: unknown) => {
    assert.ok(err instanceof QmpCommandError);
    assert.equal(err.code, 'VMFORK_QMP_ERROR');
    assert.equal(err.errorClass, 'DeviceNotFound');
    assert.equal(err.desc, "Device 'nope' not found");
    assert.deepEqual(err.details, { command: 'device_del', class: 'DeviceNotFound', desc: "Device 'nope' not found" });
    return true;
  });
});

test('garbage lines after the greeting are logged (the first at warn, the rest at debug) and skipped', async () => {
  const { warnings, debugs, logger } = captureLogger();
  const { client, conn } = await connected({ logger });
  const result = client.execute('query-status');
  const request = await conn.expect('query-status');
  conn.raw('this is not json\r\n{"half": \r\n');
  conn.reply(request, { status: 'running', running: true });
  assert.deepEqual(await result, { status: 'running', running: true });
  assert.deepEqual(warnings, ['QMP: skipped unparseable line']);
  assert.deepEqual(debugs, ['QMP: skipped unparseable line']);
});

test('a peer that does not greet with QMP is a protocol error', async () => {
  for (const first of ['{"hello": "world"}\n', 'SSH-2.0-OpenSSH\n', '{"QMP": {"version": "7"}}\n']) {
    const clientP = QmpClient.connect(fixture.peer().path);
    (await fixture.peer().nextConnection()).raw(first);
    await assert.rejects(clientP, hasCode('VMFORK_QMP_PROTOCOL'));
  }
});

test('no greeting in time is a timeout; a missing or dead socket is unavailable', async () => {
  const silent = QmpClient.connect(fixture.peer().path, { connectTimeoutMs: 50 });
  await fixture.peer().nextConnection();
  await assert.rejects(silent, hasCode('VMFORK_QMP_TIMEOUT'));
  await assert.rejects(QmpClient.connect(join(fixture.peer().dir, 'missing.sock')), hasCode('VMFORK_QMP_UNAVAILABLE'));
  const notListening = join(fixture.peer().dir, 'stale.sock');
  writeFileSync(notListening, '');
  await assert.rejects(QmpClient.connect(notListening), (err: unknown) => hasCode('VMFORK_QMP_UNAVAILABLE')(err) && (err as Error).cause !== undefined);
});

test('socket close rejects the pending and queued commands and emits close; close() is idempotent', async () => {
  const { client, conn } = await connected();
  const reasons: VmforkError[] = [];
  client.on('close', (reason) => reasons.push(reason));
  const pending = client.execute('stuck');
  const queued = client.execute('behind');
  await conn.expect('stuck');
  conn.end();
  await assert.rejects(pending, hasCode('VMFORK_QMP_UNAVAILABLE'));
  await assert.rejects(queued, hasCode('VMFORK_QMP_UNAVAILABLE'));
  assert.equal(reasons.length, 1);
  assert.ok(client.closed);
  client.close();
  client.close();
  await assert.rejects(client.execute('after'), hasCode('VMFORK_QMP_UNAVAILABLE'));
});

test('quit resolves when QEMU closes the socket without replying', async () => {
  const { client, conn } = await connected();
  const quit = client.quit();
  await conn.expect('quit');
  conn.event('SHUTDOWN', { guest: false, reason: 'host-qmp-quit' });
  conn.end();
  await quit;
});

test('helpers: query-status, stop/cont, migrate and waitForMigration', async () => {
  const { client, conn } = await connected();
  const script = conn.play([
    { expect: 'query-status', reply: { status: 'running', running: true, singlestep: false } },
    { expect: 'stop' },
    { expect: 'migrate-set-capabilities' },
    { expect: 'migrate' },
    { expect: 'query-migrate', reply: { status: 'active' } },
    { expect: 'query-migrate', reply: { status: 'completed', 'total-time': 15 } },
    { expect: 'query-rx-filter', reply: [{ name: 'net0', 'main-mac': '52:54:00:12:34:56', promiscuous: false }] },
  ]);
  assert.deepEqual(await client.queryStatus(), { status: 'running', running: true });
  await client.stop();
  await client.migrateSetCapabilities([{ capability: 'x-ignore-shared', state: true }]);
  await client.migrate('exec:cat > /tmp/state');
  const info = await client.waitForMigration({ timeoutMs: 1_000, pollMs: 5 });
  assert.equal(info.status, 'completed');
  const [filter] = await client.queryRxFilter('net0');
  assert.equal(filter?.['main-mac'], '52:54:00:12:34:56');
  const got = await script;
  assert.deepEqual(got[2]?.arguments, { capabilities: [{ capability: 'x-ignore-shared', state: true }] });
  assert.deepEqual(got[3]?.arguments, { uri: 'exec:cat > /tmp/state' });
  assert.deepEqual(got[6]?.arguments, { name: 'net0' });
});

test('waitForMigration reports a failed migration with its error-desc', async () => {
  const { client, conn } = await connected();
  const script = conn.play([{ expect: 'query-migrate', reply: { status: 'failed', 'error-desc': 'Unable to write to command' } }]);
  await assert.rejects(client.waitForMigration({ timeoutMs: 1_000 }), (err: unknown) => {
    assert.ok(hasCode('VMFORK_QMP_ERROR')(err));
    assert.match((err as Error).message, /Unable to write to command/);
    return true;
  });
  await script;
});
