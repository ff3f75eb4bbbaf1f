/**
 * What vmfork-guest refuses, and that a refusal changes nothing: framing errors (bad magic, oversized, cut-off
 * frames, unknown versions and types), malformed requests field by field, and configurations for another
 * template or fork. The real agent, in namespaces (harness.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeFields, encodeFrame, encodeHostMessage, MessageType, Tag, type AgentMessage, type ConfigRequest } from '../../src/agent/index.js';
import { field } from '../../src/agent/codec.js';
import { RawPeer, startAgent, type AgentUnderTest } from './harness.js';

const hello = (id: number): Buffer => encodeHostMessage(id, { type: 'hello' });

function expectError(m: AgentMessage, id: number, code: string, message?: RegExp): void {
  assert.equal(m.type, 'error', JSON.stringify(m));
  if (m.type !== 'error') return;
  assert.equal(m.id, id);
  assert.equal(m.code, code, m.message);
  if (message) assert.match(m.message, message);
}

async function raw(t: { after(fn: () => Promise<void>): void }, args: string[] = []): Promise<{ a: AgentUnderTest; peer: RawPeer }> {
  const a = await startAgent({ args });
  t.after(() => a.stop());
  return { a, peer: new RawPeer(a.socket) };
}

test('framing: an oversized or bad-magic frame is refused, the agent resynchronises and answers again', async (t) => {
  const { a, peer } = await raw(t);
  const big = Buffer.alloc(12);
  big.write('VF\x01\x84', 'latin1');
  big.writeUInt32BE(5, 4);
  big.writeUInt32BE(1 << 20, 8);
  peer.send(Buffer.concat([big, randomBytes(4096)]));
  expectError(await peer.next(), 5, 'frame-too-large', /1048576 bytes exceeds the limit of 65536/);
  await a.waitForNextFrame(); // the agent drops input until 200 ms of quiet: a hello sent sooner would be lost
  peer.send(hello(6));
  assert.equal((await peer.next()).type, 'hello');

  peer.send(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
  expectError(await peer.next(), 0, 'bad-magic');
  await a.waitForNextFrame();
  peer.send(hello(7));
  const m = await peer.next();
  assert.deepEqual([m.type, m.id], ['hello', 7]);
});

test('framing: another protocol version and an unknown type are refused without losing the stream', async (t) => {
  const { peer } = await raw(t);
  peer.send(Buffer.concat([encodeFrame(MessageType.HELLO_REQUEST, 1, Buffer.alloc(0), 2), encodeFrame(0x99, 2, Buffer.alloc(3)), hello(3)]));
  expectError(await peer.next(), 1, 'unsupported-version', /version 2 is not supported; this agent speaks 1/);
  expectError(await peer.next(), 2, 'unknown-type');
  assert.deepEqual(((m) => [m.type, m.id])(await peer.next()), ['hello', 3]);
});

test('framing: a frame whose payload never completes is refused after the frame timeout', async (t) => {
  const { peer } = await raw(t, ['--frame-timeout-ms', '300']);
  const frame = hello(9);
  const cut = Buffer.from(frame.subarray(0, 12));
  cut.writeUInt32BE(100, 8); // announces 100 bytes, sends none
  peer.send(cut);
  expectError(await peer.next(), 9, 'incomplete-frame', /300 ms/);
});

const NONCE = Buffer.alloc(16, 7);
function config(over: Partial<Omit<ConfigRequest, 'type'>> = {}): Omit<ConfigRequest, 'type'> {
  return { templateId: 'tpl-r', nonce: NONCE, hostname: 'web-1', mac: '02:00:00:00:00:02', machineId: '1'.repeat(32), entropy: randomBytes(64), seed: randomBytes(512), ...over };
}

test('malformed requests are refused field by field, before anything is changed', async (t) => {
  const { a, peer } = await raw(t);
  peer.send(encodeHostMessage(1, { type: 'prepare', templateId: 'tpl-r' }));
  assert.equal((await peer.next()).type, 'prepared');
  const forkMe = await peer.next();
  assert.equal(forkMe.type, 'fork-me');
  const nonce = forkMe.type === 'fork-me' ? forkMe.nonce : NONCE;
  const cases: [string, Buffer, RegExp][] = [
    ['hostname with a shell metacharacter', encodeHostMessage(10, { type: 'config', ...config({ nonce, hostname: 'a;reboot' }) }), /invalid hostname/],
    ['hostname over 64 characters', encodeHostMessage(11, { type: 'config', ...config({ nonce, hostname: `${'a'.repeat(40)}.${'b'.repeat(30)}` }) }), /invalid hostname/],
    ['upper-case MAC', encodeHostMessage(12, { type: 'config', ...config({ nonce, mac: '02:AB:00:00:00:02' }) }), /invalid mac/],
    ['multicast MAC', encodeHostMessage(13, { type: 'config', ...config({ nonce, mac: '03:00:00:00:00:02' }) }), /invalid mac/],
    ['all-zero machine id', encodeHostMessage(14, { type: 'config', ...config({ nonce, machineId: '0'.repeat(32) }) }), /invalid machine id/],
    ['prefix 31', encodeHostMessage(15, { type: 'config', ...config({ nonce, ipv4: { address: '10.0.0.2', prefix: 31, gateway: '10.0.0.3' } }) }), /prefix 31/],
    ['gateway outside the subnet', encodeHostMessage(16, { type: 'config', ...config({ nonce, ipv4: { address: '10.0.0.2', prefix: 24, gateway: '10.0.1.1' } }) }), /gateway/],
    ['network address', encodeHostMessage(17, { type: 'config', ...config({ nonce, ipv4: { address: '10.0.0.0', prefix: 24, gateway: '10.0.0.1' } }) }), /network or broadcast/],
    ['a 1970 clock', encodeHostMessage(18, { type: 'config', ...config({ nonce, hostClockNs: 0n }) }), /host clock/],
    ['16 bytes of entropy', encodeHostMessage(19, { type: 'config', ...config({ nonce, entropy: randomBytes(16) }) }), /entropy/],
    ['a 15-byte nonce', encodeHostMessage(20, { type: 'config', ...config({ nonce: nonce.subarray(0, 15) }) }), /nonce/],
    ['an unknown field', encodeFrame(MessageType.CONFIG, 21, encodeFields([field.str(Tag.TEMPLATE_ID, 'tpl-r'), field.str(Tag.BOOT_ID, 'x')])), /unknown field \(tag 7\)/],
    ['a repeated field', encodeFrame(MessageType.CONFIG, 22, encodeFields([field.str(Tag.HOSTNAME, 'a'), field.str(Tag.HOSTNAME, 'b')])), /repeats field tag 22/],
    ['a missing field', encodeFrame(MessageType.CONFIG, 23, encodeFields([field.str(Tag.HOSTNAME, 'a')])), /lacks required fields/],
    ['half an ipv4 setting', encodeFrame(MessageType.CONFIG, 24, Buffer.concat([encodeHostMessage(0, { type: 'config', ...config({ nonce }) }).subarray(12), encodeFields([field.u8(Tag.IPV4_PREFIX, 24)])])), /ipv4/],
    ['a field cut off', encodeFrame(MessageType.CONFIG, 25, Buffer.from([0, 22, 0, 9, 0x61])), /runs past the end/],
    ['PREPARE without a template id', encodeFrame(MessageType.PREPARE, 26, Buffer.alloc(0)), /lacks the template id/],
    ['PREPARE with a bad interface name', encodeHostMessage(27, { type: 'prepare', templateId: 'tpl-r', interface: '../eth0' }), /invalid value/],
    ['a template id with a slash', encodeHostMessage(28, { type: 'prepare', templateId: 'a/b' }), /invalid value/],
  ];
  for (const [what, frame, message] of cases) {
    peer.send(frame);
    const m = await peer.next();
    expectError(m, frame.readUInt32BE(4), 'malformed', message);
    assert.ok(m.type === 'error', what);
  }
  peer.send(hello(99));
  const h = await peer.next();
  assert.equal(h.type === 'hello' && h.state, 'fork-pending', 'still waiting for its configuration');
  assert.equal(readFileSync(join(a.root, 'etc/hostname'), 'utf8'), 'vmfork-template\n', 'nothing applied');
});

test('a configuration for another template or another fork is refused with a message the host can report', async (t) => {
  const a = await startAgent();
  t.after(() => a.stop());
  const client = a.client();
  await client.hello();
  const { forkMe } = await client.prepare({ templateId: 'tpl-r' });
  assert.ok(forkMe);
  const refused = async (cfg: Omit<ConfigRequest, 'type'>, code: string, message: RegExp): Promise<void> => {
    await assert.rejects(client.configure(cfg), (e: { code: string; message: string; details?: { agentCode?: string } }) => {
      assert.equal(e.code, 'VMFORK_AGENT_ERROR');
      assert.equal(e.details?.agentCode, code);
      assert.match(e.message, message);
      return true;
    });
  };
  await refused(config({ templateId: 'tpl-other', nonce: forkMe.nonce }), 'wrong-template', /for template tpl-other, this guest was forked from template tpl-r/);
  await refused(config({ nonce: randomBytes(16) }), 'wrong-nonce', /nonce is not the one this guest's FORK_ME sent/);
  assert.equal(readFileSync(join(a.root, 'etc/hostname'), 'utf8'), 'vmfork-template\n', 'nothing applied');
  const ok = await client.configure(config({ nonce: forkMe.nonce }));
  assert.equal(ok.steps.find((s) => s.step === 'hostname')?.ok, true);
});

test('the test transport refuses to run without --root: it never applies an identity to the host', async () => {
  const { run } = await import('../../src/util/index.js');
  const { agentBinary } = await import('./harness.js');
  const r = await run(await agentBinary(), ['--fd', '0'], { allowFailure: true });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--fd needs --root/);
});
