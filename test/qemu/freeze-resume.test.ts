import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freezeToFile, resumeFromFile } from '../../src/qemu/freeze-resume.js';
import { peerPerTest } from './scripted-peer.js';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// The fork mechanism's QMP order is its invariant (src/qemu/freeze-resume.ts): these tests pin it, command by
// command, against a scripted QMP peer.
const fixture = peerPerTest();
const STATE = "/var/lib/vmfork/templates/it's/state";

test('freeze: stop, x-ignore-shared, migrate to a socket vmfork serves, poll until completed, then quit — in that order; the stream lands in the file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vmfork-freeze-'));
  const state = join(dir, "it's state");
  try {
    const freezing = freezeToFile(fixture.peer().path, state);
    const conn = await fixture.peer().nextConnection();
    await conn.negotiate();
    const got = await conn.play([{ expect: 'stop' }, { expect: 'migrate-set-capabilities' }, { expect: 'migrate' }]);
    // QEMU's side: connect to the unix socket the migrate names and stream the state
    const uri = String((got[2]?.arguments as { uri: string }).uri);
    assert.match(uri, /^unix:.*migrate-[0-9a-f]{8}\.sock$/, 'a socket next to the QMP socket (the VM directory), no exec:');
    const qemu = connect(uri.slice('unix:'.length));
    await new Promise<void>((resolve) => qemu.end('device state', resolve));
    await conn.play([
      { expect: 'query-migrate', reply: { status: 'active' } },
      { expect: 'query-migrate', reply: { status: 'completed', ram: { transferred: 678_000 } } },
      { expect: 'quit' },
    ]);
    const result = await freezing;
    assert.deepEqual(conn.received.map((r) => r.execute), ['qmp_capabilities', 'stop', 'migrate-set-capabilities', 'migrate', 'query-migrate', 'query-migrate', 'quit']);
    assert.deepEqual(got[1]?.arguments, { capabilities: [{ capability: 'x-ignore-shared', state: true }] });
    assert.equal(await readFile(state, 'utf8'), 'device state');
    assert.equal(result.stateBytes, 678_000);
    assert.ok(result.cutMs >= 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('freeze: a failed migration is VMFORK_QMP_ERROR with QEMU\'s reason, and QEMU is not told to quit', async () => {
  const freezing = freezeToFile(fixture.peer().path, STATE);
  const conn = await fixture.peer().nextConnection();
  await conn.negotiate();
  await conn.play([
    { expect: 'stop' },
    { expect: 'migrate-set-capabilities' },
    { expect: 'migrate' },
    { expect: 'query-migrate', reply: { status: 'failed', 'error-desc': 'cat: write error: No space left on device' } },
  ]);
  await assert.rejects(freezing, { code: 'VMFORK_QMP_ERROR', message: /migration failed: cat: write error: No space left/ });
  await conn.closed;
  assert.ok(!conn.received.some((r) => r.execute === 'quit'), 'the parent stays stopped for the caller to roll back');
});

test('resume: x-ignore-shared before migrate-incoming, poll until paused, then cont; marks in between', async () => {
  const marks: string[] = [];
  const resuming = resumeFromFile(fixture.peer().path, { loaded: () => marks.push('loaded'), running: () => marks.push('running') });
  const conn = await fixture.peer().nextConnection();
  await conn.negotiate();
  const got = await conn.play([
    { expect: 'migrate-set-capabilities' },
    { expect: 'migrate-incoming' },
    { expect: 'query-status', reply: { status: 'inmigrate', running: false } },
    { expect: 'query-status', reply: { status: 'paused', running: false } },
  ]);
  const cont = await conn.expect('cont');
  assert.deepEqual(marks, ['loaded'], 'loaded is marked before cont is sent');
  conn.reply(cont, {});
  await resuming;
  assert.deepEqual(marks, ['loaded', 'running']);
  assert.deepEqual(conn.received.map((r) => r.execute), ['qmp_capabilities', 'migrate-set-capabilities', 'migrate-incoming', 'query-status', 'query-status', 'cont']);
  assert.deepEqual(got[0]?.arguments, { capabilities: [{ capability: 'x-ignore-shared', state: true }] });
  assert.deepEqual(got[1]?.arguments, { uri: 'fd:3' }, 'the state file QEMU was handed at spawn');
});

test('resume: QEMU refusing the incoming migration stops there (no cont)', async () => {
  const resuming = resumeFromFile(fixture.peer().path);
  const conn = await fixture.peer().nextConnection();
  await conn.negotiate();
  await conn.play([{ expect: 'migrate-set-capabilities' }, { expect: 'migrate-incoming', error: { class: 'GenericError', desc: "The incoming migration has already been started" } }]);
  await assert.rejects(resuming, { code: 'VMFORK_QMP_ERROR' });
  await conn.closed;
  assert.ok(!conn.received.some((r) => r.execute === 'cont'));
});
