/**
 * WATCH on the real vmfork-guest (compiled from guest/, in namespaces: harness.ts): session files written under
 * its --root as logind writes them (a dot temp file renamed into place, removed at the end), and the SESSIONS the
 * agent sends for them — class=user only, once per change, while the connection also serves other requests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeFields, encodeFrame, MessageType, Tag, type AgentSessions, type VmforkAgentClient } from '../../src/agent/index.js';
import { field } from '../../src/agent/codec.js';
import { makeGuestRoot, RawPeer, startAgent, type AgentUnderTest } from './harness.js';

const SESSIONS = 'run/systemd/sessions';

/** A session file in logind's format (session_save): written to a dot temp file, then renamed, as logind does. */
function writeSession(root: string, id: string, fields: Record<string, string>): void {
  const body = `# This is private data. Do not parse.\n${Object.entries(fields).map(([k, v]) => `${k}=${v}\n`).join('')}`;
  const tmp = join(root, SESSIONS, `.#${id}Xa1b2c`);
  writeFileSync(tmp, body);
  renameSync(tmp, join(root, SESSIONS, id));
}

const ssh = (state = 'active'): Record<string, string> => ({
  UID: '1000', USER: 'alice', ACTIVE: '1', IS_DISPLAY: '0', STATE: state, REMOTE: '1', TYPE: 'tty', CLASS: 'user',
  SCOPE: 'session-3.scope', REMOTE_HOST: '10.0.0.1', SERVICE: 'sshd', LEADER: '812',
});

/** Every SESSIONS the watch delivers, taken in order by the test. */
class Inbox {
  private readonly got: AgentSessions[] = [];
  private wake: (() => void) | undefined;
  readonly push = (s: AgentSessions): void => {
    this.got.push(s);
    this.wake?.();
  };

  async next(timeoutMs = 10_000): Promise<AgentSessions> {
    const deadline = Date.now() + timeoutMs;
    while (this.got.length === 0) {
      if (Date.now() >= deadline) throw new Error(`no SESSIONS within ${timeoutMs} ms`);
      await new Promise<void>((res) => {
        this.wake = res;
        setTimeout(res, Math.max(1, deadline - Date.now()));
      });
    }
    return this.got.shift() as AgentSessions;
  }
}

async function watching(t: { after(fn: () => Promise<void>): void }, root: string): Promise<{ a: AgentUnderTest; client: VmforkAgentClient; inbox: Inbox; first: AgentSessions }> {
  const a = await startAgent({ root });
  t.after(() => a.stop());
  const client = a.client();
  const hello = await client.hello();
  assert.ok(hello.capabilities.includes('sessions'), 'the agent announces the sessions capability');
  assert.equal(hello.agentVersion, '0.2.0');
  const inbox = new Inbox();
  const first = await client.watchSessions(inbox.push);
  assert.deepEqual(await inbox.next(), first, 'the listener gets the first list too');
  return { a, client, inbox, first };
}

test('WATCH: the sessions now, then one SESSIONS per change of the class=user list; other requests are answered meanwhile', async (t) => {
  const root = makeGuestRoot();
  mkdirSync(join(root, SESSIONS), { recursive: true });
  writeSession(root, 'c1', { ...ssh(), CLASS: 'greeter', USER: 'lightdm', UID: '110', TYPE: 'x11', SERVICE: 'lightdm-greeter' });
  const { client, inbox, first } = await watching(t, root);
  assert.deepEqual([first.count, first.sessions], [0, []], 'a greeter is no user session');

  writeSession(root, '3', ssh());
  const one = await inbox.next();
  assert.equal(one.id, first.id, 'updates carry the WATCH request\'s id');
  assert.equal(one.count, 1);
  assert.deepEqual(one.sessions, [{ id: '3', user: 'alice', uid: 1000, class: 'user', sessionType: 'tty', state: 'active', remote: true, active: true, service: 'sshd' }]);

  // a second class (background) and a rewrite with nothing the host sees changed send nothing; the next real
  // change proves it: the SESSIONS after them is that change, not a copy
  writeSession(root, '4', { ...ssh(), CLASS: 'background', SERVICE: 'cron' });
  writeSession(root, '3', { ...ssh(), LEADER: '813' });
  writeSession(root, '10', { ...ssh('online'), UID: '0', USER: 'root', REMOTE: '0', ACTIVE: '0', TYPE: 'unspecified', SERVICE: 'login' });
  const two = await inbox.next();
  assert.deepEqual(two.sessions.map((s) => [s.id, s.user, s.state, s.remote, s.active]), [['3', 'alice', 'active', true, true], ['10', 'root', 'online', false, false]], 'sorted by id, numbers naturally');

  const hello = await client.hello();
  assert.equal(hello.state, 'idle', 'a HELLO on the watching connection is answered');

  writeSession(root, '3', ssh('closing'));
  assert.deepEqual((await inbox.next()).sessions.map((s) => [s.id, s.state]), [['3', 'closing'], ['10', 'online']]);
  rmSync(join(root, SESSIONS, '3'));
  assert.deepEqual((await inbox.next()).sessions.map((s) => s.id), ['10']);
  rmSync(join(root, SESSIONS, '10'));
  assert.deepEqual(await inbox.next(), { type: 'sessions', id: first.id, count: 0, sessions: [] });
});

test('WATCH before logind made its directory: an empty list, then the sessions once it appears; EOF ends the watch', async (t) => {
  const root = makeGuestRoot();
  mkdirSync(join(root, 'run/systemd'), { recursive: true });
  const { a, inbox, first } = await watching(t, root);
  assert.equal(first.count, 0);
  mkdirSync(join(root, SESSIONS));
  writeSession(root, '1', ssh());
  const seen = await inbox.next();
  assert.deepEqual(seen.sessions.map((s) => s.user), ['alice']);
  await a.stop({ keepRoot: true });
  assert.match(a.stderr(), /WATCH: session watch started/);
  assert.match(a.stderr(), /the host went away: session watch ended/);
  rmSync(root, { recursive: true, force: true });
});

test('WATCH refusals: a field in the request is malformed; no /run/systemd at all is internal, and the stream stays in step', async (t) => {
  const a = await startAgent();
  t.after(() => a.stop());
  const peer = new RawPeer(a.socket);
  peer.send(encodeFrame(MessageType.WATCH, 7, encodeFields([field.str(Tag.USER, 'alice')])));
  peer.send(encodeFrame(MessageType.WATCH, 8, Buffer.alloc(0)));
  peer.send(encodeFrame(MessageType.HELLO_REQUEST, 9, Buffer.alloc(0)));
  const m1 = await peer.next();
  assert.deepEqual([m1.type, m1.id, m1.type === 'error' && m1.code], ['error', 7, 'malformed']);
  const m2 = await peer.next();
  assert.deepEqual([m2.type, m2.id, m2.type === 'error' && m2.code], ['error', 8, 'internal']);
  assert.match(m2.type === 'error' ? m2.message : '', /cannot watch \/run\/systemd\/sessions or \/run\/systemd/);
  const m3 = await peer.next();
  assert.deepEqual([m3.type, m3.id], ['hello', 9]);
});
