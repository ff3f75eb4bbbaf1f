/** The host-side codec and client on their own: frames, fields, limits, the handshake's skipping, by a scripted peer. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import {
  decodeAgentMessage,
  decodeFields,
  encodeFields,
  encodeFrame,
  encodeHostMessage,
  FrameDecoder,
  MAX_PAYLOAD_BYTES,
  MessageType,
  Tag,
  VmforkAgentClient,
  type Field,
} from '../../src/agent/index.js';
import { field } from '../../src/agent/codec.js';
import type { VmforkError } from '../../src/errors.js';
import { hostNowNs, waitUntil } from '../../src/util/index.js';
import { withTempDir } from '../helpers/temp-dir.js';

const isCode = (code: string) => (err: VmforkError): boolean => err.code === code;

test('frames survive any chunking, and a frame is one header + payload', () => {
  const a = encodeFrame(MessageType.ERROR, 7, encodeFields([field.str(Tag.ERROR_CODE, 'x'), field.str(Tag.MESSAGE, 'y')]));
  const b = encodeFrame(MessageType.KICKED, 8, Buffer.alloc(0));
  const stream = Buffer.concat([a, b]);
  assert.equal(a.subarray(0, 4).toString('latin1'), 'VF\x01\x7f');
  for (const size of [1, 3, 12, 13, stream.length]) {
    const d = new FrameDecoder();
    const frames = [];
    for (let i = 0; i < stream.length; i += size) frames.push(...d.push(stream.subarray(i, i + size)));
    assert.deepEqual(frames.map((f) => [f.type, f.id, f.payload.length]), [[0x7f, 7, 10], [0x05, 8, 0]], `chunks of ${size}`);
  }
});

test('the decoder refuses a wrong magic and an oversized announcement at once, before buffering it', () => {
  assert.throws(() => new FrameDecoder().push(Buffer.from('XF\x01\x01\0\0\0\x01\0\0\0\0')), isCode('VMFORK_AGENT_PROTOCOL'));
  const big = Buffer.alloc(12);
  big.write('VF\x01\x04', 'latin1');
  big.writeUInt32BE(MAX_PAYLOAD_BYTES + 1, 8);
  assert.throws(() => new FrameDecoder().push(big), (e: VmforkError) => e.code === 'VMFORK_AGENT_PROTOCOL' && /65537 bytes/.test(e.message));
  assert.throws(() => encodeFrame(1, 1, Buffer.alloc(MAX_PAYLOAD_BYTES + 1)), isCode('VMFORK_INVALID_ARGUMENT'));
});

test('seeking skips stale bytes and other frames up to the accepted header', () => {
  const d = new FrameDecoder();
  d.seekUntil((h) => h.type === MessageType.HELLO && h.id === 42);
  const stale = Buffer.concat([Buffer.from('tail of an old frame VF'), encodeFrame(MessageType.HELLO, 41, Buffer.alloc(0))]);
  const mine = encodeFrame(MessageType.HELLO, 42, Buffer.from([0, 1, 0, 0]));
  const after = encodeFrame(MessageType.KICKED, 43, Buffer.alloc(0));
  const frames = [...d.push(stale), ...d.push(mine.subarray(0, 5)), ...d.push(Buffer.concat([mine.subarray(5), after]))];
  assert.deepEqual(frames.map((f) => f.id), [42, 43]);
  assert.equal(d.seeking, false);
  assert.equal(d.skipped, stale.length);
});

test('fields: groups nest, a field running past its payload is refused', () => {
  const inner = encodeFields([field.str(Tag.FACT_KEY, 'k'), field.str(Tag.FACT_VALUE, 'v')]);
  const payload = encodeFields([field.bytes(Tag.FACT, inner), field.u64(Tag.CLOCK_NS, 5n)]);
  const fs = decodeFields(payload);
  assert.deepEqual(fs.map((f) => f.tag), [Tag.FACT, Tag.CLOCK_NS]);
  assert.deepEqual(decodeFields((fs[0] as Field).value).map((f) => f.value.toString()), ['k', 'v']);
  assert.throws(() => decodeFields(payload.subarray(0, payload.length - 1)), isCode('VMFORK_AGENT_PROTOCOL'));
  assert.throws(() => decodeFields(Buffer.from([0, 1, 0])), isCode('VMFORK_AGENT_PROTOCOL'));
});

test('CONFIG carries every field once, ipv4 only when given, and a fresh host clock', () => {
  // the encoder's clock (hostNowNs: timeOrigin + the monotonic clock) may trail Date.now() by a few ms: read the same one
  const before = hostNowNs();
  const frame = encodeHostMessage(9, {
    type: 'config',
    templateId: 't',
    nonce: Buffer.alloc(16, 1),
    hostname: 'h',
    mac: '02:00:00:00:00:02',
    machineId: '1'.repeat(32),
    entropy: Buffer.alloc(64),
    seed: Buffer.alloc(512),
  });
  const d = new FrameDecoder().push(frame)[0];
  assert.ok(d);
  assert.equal(d.type, MessageType.CONFIG);
  const tags = decodeFields(d.payload).map((f) => f.tag);
  assert.deepEqual(tags, [Tag.TEMPLATE_ID, Tag.NONCE, Tag.HOSTNAME, Tag.MAC, Tag.MACHINE_ID, Tag.ENTROPY, Tag.SEED, Tag.CLOCK_NS]);
  const clock = decodeFields(d.payload).find((f) => f.tag === Tag.CLOCK_NS)?.value.readBigUInt64BE(0) ?? 0n;
  assert.ok(clock >= before && clock < before + 5_000_000_000n, String(clock));
});

test('agent messages: unknown tags, repeated fields, unknown types and versions are protocol errors', () => {
  const msg = (type: number, fields: Field[], version = 1) => ({ version, type, id: 1, payload: encodeFields(fields) });
  const ok = [field.str(Tag.ERROR_CODE, 'malformed'), field.str(Tag.MESSAGE, 'm')];
  assert.deepEqual(decodeAgentMessage(msg(MessageType.ERROR, ok)), { type: 'error', id: 1, code: 'malformed', message: 'm' });
  assert.throws(() => decodeAgentMessage(msg(MessageType.ERROR, [...ok, field.str(Tag.HOSTNAME, 'x')])), isCode('VMFORK_AGENT_PROTOCOL'));
  assert.throws(() => decodeAgentMessage(msg(MessageType.ERROR, [...ok, field.str(Tag.MESSAGE, 'again')])), isCode('VMFORK_AGENT_PROTOCOL'));
  assert.throws(() => decodeAgentMessage(msg(MessageType.ERROR, ok.slice(1))), isCode('VMFORK_AGENT_PROTOCOL'));
  assert.throws(() => decodeAgentMessage(msg(0x42, ok)), isCode('VMFORK_AGENT_PROTOCOL'));
  assert.throws(() => decodeAgentMessage(msg(MessageType.ERROR, ok, 2)), isCode('VMFORK_AGENT_PROTOCOL'));
  const forkMe = [field.str(Tag.TEMPLATE_ID, 't'), field.bytes(Tag.NONCE, Buffer.alloc(15)), field.str(Tag.BOOT_ID, 'b'), field.u64(Tag.CLOCK_NS, 1n)];
  assert.throws(() => decodeAgentMessage(msg(MessageType.FORK_ME, forkMe)), (e: VmforkError) => /nonce of 15 bytes/.test(e.message));
});

/** A scripted peer on a unix socket: answers the first HELLO after some garbage, then whatever the test scripts. */
async function withPeer(dir: string, script: (peer: Socket, firstHelloId: number) => void, body: (client: VmforkAgentClient) => Promise<void>): Promise<void> {
  const path = join(dir, 'agent.sock');
  const server = createServer((peer) => {
    const d = new FrameDecoder();
    let answered = false;
    peer.on('data', (chunk: Buffer) => {
      for (const f of d.push(chunk)) {
        if (f.type !== MessageType.HELLO_REQUEST || answered) continue;
        answered = true;
        script(peer, f.id);
      }
    });
  });
  await new Promise<void>((res) => server.listen(path, res));
  const client = await VmforkAgentClient.connect(path);
  try {
    await body(client);
  } finally {
    client.close();
    await new Promise<void>((res) => server.close(() => res()));
  }
}

const helloFields = (state = 'idle') => [
  field.u32(Tag.PROTOCOL, 1),
  field.str(Tag.AGENT_VERSION, '0.1.0'),
  field.str(Tag.CAPABILITY, 'config'),
  field.str(Tag.CAPABILITY, 'prepare'),
  field.str(Tag.STATE, state),
  field.u32(Tag.PID, 123),
  field.u32(Tag.MAX_PAYLOAD, MAX_PAYLOAD_BYTES),
  field.str(Tag.BOOT_ID, 'boot'),
  field.u64(Tag.CLOCK_NS, 1n),
];

test('client: the handshake skips leftovers of an earlier connection; an unanswered request times out, the client stays open', withTempDir('vmfork-agent-peer-', async (dir) => {
  await withPeer(
    dir,
    (peer, id) => {
      peer.write(Buffer.from('\x00\x17half a frame from before'));
      peer.write(encodeFrame(MessageType.HELLO, id, encodeFields(helloFields('fork-pending'))));
    },
    async (client) => {
      const hello = await client.hello({ timeoutMs: 2_000 });
      assert.equal(hello.state, 'fork-pending');
      assert.deepEqual(hello.capabilities, ['config', 'prepare']);
      // the peer never answers CONFIG: a timeout, and the client stays usable for the late answer to be dropped
      await assert.rejects(
        client.configure({ templateId: 't', nonce: Buffer.alloc(16), hostname: 'h', mac: '02:00:00:00:00:02', machineId: '1'.repeat(32), entropy: Buffer.alloc(64), seed: Buffer.alloc(512) }, { timeoutMs: 50 }),
        isCode('VMFORK_AGENT_TIMEOUT'),
      );
      assert.equal(client.closed, false);
    },
  );
}));

test('client: garbage after the handshake closes the connection with VMFORK_AGENT_PROTOCOL', withTempDir('vmfork-agent-peer-', async (dir) => {
  await withPeer(
    dir,
    (peer, id) => {
      peer.write(encodeFrame(MessageType.HELLO, id, encodeFields(helloFields())));
      // garbage as the answer to the next request: the handshake is done by then (added while 'data' is being
      // emitted for the hello, so this listener first sees the request after it)
      peer.once('data', () => peer.write(Buffer.from('this is not a frame at all')));
    },
    async (client) => {
      await client.hello({ timeoutMs: 2_000 });
      await assert.rejects(client.prepare({ templateId: 't' }, { timeoutMs: 2_000 }), isCode('VMFORK_AGENT_PROTOCOL'));
      assert.equal(client.closed, true);
    },
  );
}));

test('client: requests before the handshake are a programming error', withTempDir('vmfork-agent-peer-', async (dir) => {
  await withPeer(dir, () => undefined, async (client) => {
    await assert.rejects(client.prepare({ templateId: 't' }), isCode('VMFORK_INTERNAL'));
  });
}));

test('client: waitReady ends at once with the signal\'s reason when it aborts, while the agent stays silent', withTempDir('vmfork-agent-peer-', async (dir) => {
  const path = join(dir, 'agent.sock');
  let peer: Socket | undefined;
  let gone = false;
  const server = createServer((s) => {
    peer = s;
    s.resume(); // read, or its end is never seen
    s.on('close', () => (gone = true));
  });
  await new Promise<void>((res) => server.listen(path, res));
  try {
    // one HELLO attempt of 10 minutes (past the file's timeout): only the abort can end it, by closing the connection
    const cancel = new AbortController();
    const waiting = VmforkAgentClient.waitReady(path, { timeoutMs: 600_000, attemptTimeoutMs: 600_000, signal: cancel.signal });
    await waitUntil(() => peer, { deadlineMs: 5_000, everyMs: 20, what: 'the client to connect' });
    cancel.abort(new Error('cancelled while preparing'));
    await assert.rejects(waiting, /cancelled while preparing/);
    await waitUntil(() => gone, { deadlineMs: 5_000, everyMs: 20, what: 'the abandoned connection to close' });
  } finally {
    await new Promise<void>((res) => server.close(() => res()));
  }
}));
