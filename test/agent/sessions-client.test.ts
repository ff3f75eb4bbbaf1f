/** The host side of WATCH on its own: the SESSIONS decoder, and watchSessions() against a scripted peer. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { decodeAgentMessage, encodeFields, encodeFrame, FrameDecoder, MAX_PAYLOAD_BYTES, MessageType, openSessions, Tag, watchSessions, type AgentSessions, type Field } from '../../src/agent/index.js';
import { field } from '../../src/agent/codec.js';
import type { VmforkError } from '../../src/errors.js';
import { waitUntil } from '../../src/util/index.js';
import { withTempDir } from '../helpers/temp-dir.js';

const isCode = (code: string) => (err: VmforkError): boolean => err.code === code;

const group = (fields: Field[]): Field => ({ tag: Tag.SESSION, value: encodeFields(fields) });

function session(id: string, user: string, extra: Field[] = [], state = 'active'): Field {
  return group([field.str(Tag.SESSION_ID, id), field.str(Tag.USER, user), field.u32(Tag.UID, 1000), field.str(Tag.CLASS, 'user'), field.str(Tag.SESSION_STATE, state), field.u8(Tag.REMOTE, 1), field.u8(Tag.ACTIVE, 1), ...extra]);
}

/** A session group with `uid`, `remote` as given and no user when `user` is undefined. */
function rawSession(user: string | undefined, uid: Field, remote: number): Field {
  const named = user === undefined ? [] : [field.str(Tag.USER, user)];
  return group([field.str(Tag.SESSION_ID, '1'), ...named, uid, field.str(Tag.CLASS, 'user'), field.str(Tag.SESSION_STATE, 'active'), field.u8(Tag.REMOTE, remote), field.u8(Tag.ACTIVE, 0)]);
}

const sessionsFrame = (id: number, count: number, groups: Field[]): Buffer => encodeFrame(MessageType.SESSIONS, id, encodeFields([field.u32(Tag.SESSION_COUNT, count), ...groups]));

function decode(frame: Buffer): ReturnType<typeof decodeAgentMessage> {
  const [f] = new FrameDecoder().push(frame);
  assert.ok(f);
  return decodeAgentMessage(f);
}

test('SESSIONS decodes to sessions with their optional fields; a list of none is count 0', () => {
  const m = decode(sessionsFrame(9, 2, [session('3', 'alice', [field.str(Tag.SESSION_TYPE, 'tty'), field.str(Tag.SERVICE, 'sshd')]), session('c1', 'bob', [], 'closing')]));
  assert.deepEqual(m, {
    type: 'sessions',
    id: 9,
    count: 2,
    sessions: [
      { id: '3', user: 'alice', uid: 1000, class: 'user', sessionType: 'tty', state: 'active', remote: true, active: true, service: 'sshd' },
      { id: 'c1', user: 'bob', uid: 1000, class: 'user', state: 'closing', remote: true, active: true },
    ],
  });
  assert.deepEqual(openSessions(m as AgentSessions).map((s) => s.user), ['alice'], 'a closing session is logged out');
  assert.deepEqual(openSessions(m as AgentSessions, 'bob'), []);
  assert.deepEqual(decode(sessionsFrame(1, 0, [])), { type: 'sessions', id: 1, count: 0, sessions: [] });
});

test('SESSIONS that break PROTOCOL.md are protocol errors', () => {
  const bad: [string, Buffer, RegExp][] = [
    ['no count', encodeFrame(MessageType.SESSIONS, 1, encodeFields([session('1', 'a')])), /SESSIONS lacks field tag 60/],
    ['count below the list', sessionsFrame(1, 0, [session('1', 'a')]), /counts 0 session\(s\) but lists 1/],
    ['an id twice', sessionsFrame(1, 2, [session('1', 'a'), session('1', 'b')]), /session id twice/],
    ['a flag of 2', sessionsFrame(1, 1, [rawSession('a', field.u32(Tag.UID, 0), 2)]), /is 2, expected 0 or 1/],
    ['an unknown field in a session', sessionsFrame(1, 1, [session('1', 'a', [field.str(Tag.HOSTNAME, 'x')])]), /a session carries an unknown field \(tag 22\)/],
    ['no user', sessionsFrame(1, 1, [rawSession(undefined, field.u32(Tag.UID, 0), 0)]), /a session lacks field tag 52/],
    ['an empty user', sessionsFrame(1, 1, [session('1', '')]), /empty id, user or state/],
    ['a short uid', sessionsFrame(1, 1, [rawSession('a', field.u8(Tag.UID, 0), 0)]), /has 1 bytes, expected 4/],
  ];
  for (const [what, frame, message] of bad) assert.throws(() => decode(frame), (e: VmforkError) => e.code === 'VMFORK_AGENT_PROTOCOL' && message.test(e.message), what);
});

interface Peer {
  server: Server;
  path: string;
  socket(): Socket | undefined;
  watchIds: number[];
}

/** A scripted agent on a unix socket: HELLO with `capabilities`, WATCH answered by `onWatch`. */
async function scriptedAgent(dir: string, capabilities: string[], onWatch: (peer: Socket, id: number) => void): Promise<Peer> {
  const path = join(dir, 'agent.sock');
  let current: Socket | undefined;
  const watchIds: number[] = [];
  const server = createServer((peer) => {
    current = peer;
    const d = new FrameDecoder();
    peer.on('error', () => undefined);
    peer.on('data', (chunk: Buffer) => {
      for (const f of d.push(chunk)) {
        if (f.type === MessageType.HELLO_REQUEST) {
          const hello = [field.u32(Tag.PROTOCOL, 1), field.str(Tag.AGENT_VERSION, capabilities.includes('sessions') ? '0.2.0' : '0.1.0'), ...capabilities.map((c) => field.str(Tag.CAPABILITY, c)), field.str(Tag.STATE, 'configured'), field.u32(Tag.PID, 1), field.u32(Tag.MAX_PAYLOAD, MAX_PAYLOAD_BYTES), field.str(Tag.BOOT_ID, 'b'), field.u64(Tag.CLOCK_NS, 1n)];
          peer.write(encodeFrame(MessageType.HELLO, f.id, encodeFields(hello)));
        } else if (f.type === MessageType.WATCH) {
          assert.equal(f.payload.length, 0, 'WATCH carries no field');
          watchIds.push(f.id);
          onWatch(peer, f.id);
        }
      }
    });
  });
  await new Promise<void>((res) => server.listen(path, res));
  return { server, path, socket: () => current, watchIds };
}

const closeServer = (s: Server): Promise<void> => new Promise((res) => s.close(() => res()));

test('watchSessions: the first list, every change after it, and `ended` when the agent goes away', withTempDir('vmfork-watch-', async (dir) => {
  const peer = await scriptedAgent(dir, ['config', 'sessions'], (s, id) => s.write(sessionsFrame(id, 1, [session('3', 'alice')])));
  try {
    const got: AgentSessions[] = [];
    const watch = await watchSessions(peer.path, (s) => got.push(s), { timeoutMs: 5_000 });
    assert.deepEqual(watch.initial.sessions.map((s) => s.user), ['alice']);
    const [id] = peer.watchIds;
    assert.ok(id !== undefined);
    const sock = peer.socket();
    assert.ok(sock);
    sock.write(sessionsFrame(id, 1, [session('3', 'alice', [], 'closing')]));
    sock.write(sessionsFrame(id + 1, 0, [])); // not this watch's id: never delivered
    sock.write(sessionsFrame(id, 0, []));
    await waitUntil(() => got.length === 3, { deadlineMs: 5_000, everyMs: 10, what: 'three SESSIONS delivered' });
    assert.deepEqual(got.map((s) => s.sessions.map((x) => x.state)), [['active'], ['closing'], []]);
    sock.destroy();
    const why = await watch.ended;
    assert.equal(why.code, 'VMFORK_AGENT_UNAVAILABLE');
  } finally {
    await closeServer(peer.server);
  }
}));

test('watchSessions: an agent without the sessions capability is refused and its connection closed', withTempDir('vmfork-watch-', async (dir) => {
  const peer = await scriptedAgent(dir, ['config'], () => assert.fail('no WATCH is sent to an agent that cannot watch'));
  try {
    await assert.rejects(watchSessions(peer.path, () => undefined, { timeoutMs: 5_000 }), (e: VmforkError) => isCode('VMFORK_AGENT_ERROR')(e) && /no "sessions" capability/.test(e.message) && (e.details as { agentCode?: string }).agentCode === 'unknown-type');
    await waitUntil(() => peer.socket()?.destroyed || peer.socket()?.readableEnded, { deadlineMs: 5_000, everyMs: 10, what: 'the connection to close' });
  } finally {
    await closeServer(peer.server);
  }
}));

test('watchSessions: the signal ends a live watch (ended says why) and one still waiting for its first list', withTempDir('vmfork-watch-', async (dir) => {
  let answer = true;
  const peer = await scriptedAgent(dir, ['sessions'], (s, id) => answer && s.write(sessionsFrame(id, 0, [])));
  try {
    const live = new AbortController();
    const watch = await watchSessions(peer.path, () => undefined, { signal: live.signal, timeoutMs: 5_000 });
    live.abort(new Error('pool removed'));
    assert.equal((await watch.ended).code, 'VMFORK_AGENT_UNAVAILABLE');

    answer = false;
    const early = new AbortController();
    const pending = watchSessions(peer.path, () => undefined, { signal: early.signal, timeoutMs: 60_000 });
    await waitUntil(() => peer.watchIds.length === 2, { deadlineMs: 5_000, everyMs: 10, what: 'the second WATCH' });
    early.abort(new Error('claim released'));
    await assert.rejects(pending, /claim released/);
  } finally {
    await closeServer(peer.server);
  }
}));
