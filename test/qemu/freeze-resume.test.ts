import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freezeToFile, resumeFromFile } from '../../src/qemu/freeze-resume.js';
import { peerPerTest } from './scripted-peer.js';

// The fork mechanism's QMP order is its invariant (src/qemu/freeze-resume.ts): these tests pin it, command by
// command, against a scripted QMP peer.
const fixture = peerPerTest();
const STATE = "/var/lib/vmfork/templates/it's/state";

test('freeze: stop, x-ignore-shared, migrate to the file, poll until completed, then quit — in that order', async () => {
  const freezing = freezeToFile(fixture.peer().path, STATE);
  const conn = await fixture.peer().nextConnection();
  await conn.negotiate();
  const got = await conn.play([
    { expect: 'stop' },
    { expect: 'migrate-set-capabilities' },
    { expect: 'migrate' },
    { expect: 'query-migrate', reply: { status: 'active' } },
    { expect: 'query-migrate', reply: { status: 'completed', ram: { transferred: 678_000 } } },
    { expect: 'quit' },
  ]);
  const result = await freezing;
  assert.deepEqual(conn.received.map((r) => r.execute), ['qmp_capabilities', 'stop', 'migrate-set-capabilities', 'migrate', 'query-migrate', 'query-migrate', 'quit']);
  assert.deepEqual(got[1]?.arguments, { capabilities: [{ capability: 'x-ignore-shared', state: true }] });
  // QEMU runs exec: URIs through /bin/sh: the path is quoted, its own quote included
  assert.deepEqual(got[2]?.arguments, { uri: `exec:cat > '/var/lib/vmfork/templates/it'\\''s/state'` });
  assert.equal(result.stateBytes, 678_000);
  assert.ok(result.cutMs >= 0);
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
  const resuming = resumeFromFile(fixture.peer().path, '/t/state', { loaded: () => marks.push('loaded'), running: () => marks.push('running') });
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
  assert.deepEqual(got[1]?.arguments, { uri: "exec:cat '/t/state'" });
});

test('resume: QEMU refusing the incoming migration stops there (no cont)', async () => {
  const resuming = resumeFromFile(fixture.peer().path, '/t/state');
  const conn = await fixture.peer().nextConnection();
  await conn.negotiate();
  await conn.play([{ expect: 'migrate-set-capabilities' }, { expect: 'migrate-incoming', error: { class: 'GenericError', desc: "The incoming migration has already been started" } }]);
  await assert.rejects(resuming, { code: 'VMFORK_QMP_ERROR' });
  await conn.closed;
  assert.ok(!conn.received.some((r) => r.execute === 'cont'));
});
