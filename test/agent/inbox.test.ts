import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeFields, encodeFrame, FrameDecoder, MessageType, Tag, VmforkAgentClient, type AgentClientOptions } from '../../src/agent/index.js';
import { field } from '../../src/agent/codec.js';
import { VmforkError } from '../../src/errors.js';

// The host side's inbox of vmfork-guest messages nobody asked for (issue 13): capped, each one dropped counted and
// logged at a limited rate, a stream of them ends the connection. A scripted agent on a unix socket, no guest.

const helloAnswer = (id: number): Buffer =>
  encodeFrame(
    MessageType.HELLO,
    id,
    encodeFields([
      field.u32(Tag.PROTOCOL, 1),
      field.str(Tag.AGENT_VERSION, 'scripted'),
      field.str(Tag.STATE, 'idle'),
      field.u32(Tag.PID, 1),
      field.u32(Tag.MAX_PAYLOAD, 65_536),
      field.str(Tag.BOOT_ID, 'boot'),
      field.u64(Tag.CLOCK_NS, 1n),
    ]),
  );

const unsolicited = (id: number): Buffer => encodeFrame(MessageType.ERROR, id, encodeFields([field.str(Tag.ERROR_CODE, 'stale'), field.str(Tag.MESSAGE, 'nobody asked')]));

/** A client that finished its handshake with a scripted agent, and the agent's end of the socket. */
async function handshaken(t: { after(fn: () => void): void }, options: AgentClientOptions = {}): Promise<{ client: VmforkAgentClient; agent: Socket; warn: string[]; debug: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'vmfork-inbox-'));
  const path = join(dir, 'vfg.sock');
  const accepted = new Promise<Socket>((resolve) => {
    const server = createServer((s) => {
      server.close();
      resolve(s);
    }).listen(path);
  });
  const warn: string[] = [];
  const debug: string[] = [];
  const logger = { warn: (_o: object, m?: string) => warn.push(m ?? ''), debug: (_o: object, m?: string) => debug.push(m ?? '') };
  const client = await VmforkAgentClient.connect(path, { logger, ...options });
  const agent = await accepted;
  agent.on('error', () => undefined);
  t.after(() => {
    client.close();
    agent.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  const decoder = new FrameDecoder();
  agent.on('data', (chunk: Buffer) => {
    for (const f of decoder.push(chunk)) if (f.type === MessageType.HELLO_REQUEST) agent.write(helloAnswer(f.id));
  });
  await client.hello({ timeoutMs: 10_000 });
  return { client, agent, warn, debug };
}

test('unsolicited messages past the inbox (32) are dropped oldest first, counted and logged once a minute', async (t) => {
  const { client, agent, warn, debug } = await handshaken(t);
  for (let i = 1; i <= 40; i++) agent.write(unsolicited(1000 + i));
  // a request after them: its answer arrives behind the 40, so all of them were handled by then
  const hello = client.hello({ timeoutMs: 10_000 });
  assert.equal((await hello).agentVersion, 'scripted');
  const dropped = [...warn, ...debug].filter((m) => m === 'vmfork-guest: inbox full, dropped the oldest unsolicited message');
  assert.equal(dropped.length, 8, '40 messages, 32 kept');
  assert.deepEqual(warn, ['vmfork-guest: inbox full, dropped the oldest unsolicited message'], 'one warn, the rest at debug');
  assert.equal(client.closed, false, '8 in a row is under the default 16');
});

test('a stream of unsolicited messages ends the connection with VMFORK_AGENT_PROTOCOL', async (t) => {
  const { client, agent } = await handshaken(t, { maxJunkLines: 4 });
  for (let i = 1; i <= 40; i++) agent.write(unsolicited(1000 + i));
  const reason = await client.ended;
  assert.ok(reason instanceof VmforkError);
  assert.equal(reason.code, 'VMFORK_AGENT_PROTOCOL', reason.message);
  assert.match(reason.message, /4 unsolicited messages past its inbox in a row/);
  assert.ok(client.closed);
});
