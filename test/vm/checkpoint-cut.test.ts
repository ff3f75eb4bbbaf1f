import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, test } from 'node:test';
import { createLogger } from '../../src/util/index.js';
import { cutCheckpoint, type CutPlan } from '../../src/vm/checkpoint-cut.js';
import { hasCode, ScriptedPeer, type PeerConnection } from '../qemu/scripted-peer.js';

// The checkpoint's order is its invariant (src/vm/checkpoint-cut.ts): pinned here against a scripted QMP monitor
// and a scripted qemu-ga, command by command.
let qmp: ScriptedPeer;
let qga: ScriptedPeer;

beforeEach(async () => {
  qmp = await ScriptedPeer.start();
  qga = await ScriptedPeer.start();
});

afterEach(async () => {
  await qmp.stop();
  await qga.stop();
});

function plan(extra: Partial<CutPlan> = {}): CutPlan {
  return {
    qmpPath: qmp.path,
    agentPath: qga.path,
    snapshots: [{ id: 'disk0', active: '/v/c1/overlays/disk0-0123abcd.qcow2' }, { id: 'home', active: '/v/c1/overlays/home-89abcdef.qcow2' }],
    statePath: "/v/c1/checkpoints/it's/state",
    log: createLogger(undefined),
    ...extra,
  };
}

/** Both channels open: QMP negotiated, the agent's first command synced. Resolves with the freeze request answered. */
async function frozen(): Promise<{ mon: PeerConnection; ga: PeerConnection }> {
  const mon = await qmp.nextConnection();
  await mon.negotiate();
  const ga = await qga.nextConnection();
  await ga.answerSync();
  await ga.play([{ expect: 'guest-fsfreeze-freeze', reply: 2 }]);
  return { mon, ga };
}

test('freeze → stop → one snapshot transaction → record → save the RAM with the state → cont → thaw, in that order', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vmfork-cut-'));
  try {
    const order: string[] = [];
    const statePath = join(dir, "it's state");
    const cutting = cutCheckpoint(plan({ statePath, onSnapshot: async () => void order.push('record') }));
    const { mon, ga } = await frozen();
    const got = await mon.play([{ expect: 'stop' }, { expect: 'transaction' }]);
    order.push('transaction');
    const rest = await mon.play([{ expect: 'migrate-set-capabilities' }, { expect: 'migrate-set-parameters' }, { expect: 'migrate' }]);
    // QEMU's side: it connects to the socket the migrate names (vmfork serves it; QEMU may not exec) and streams
    const uri = String((rest[2]?.arguments as { uri: string }).uri);
    assert.match(uri, /^unix:.*migrate-[0-9a-f]{8}\.sock$/, 'a socket vmfork listens on, no exec:');
    const qemu = connect(uri.slice('unix:'.length));
    await new Promise<void>((resolve) => qemu.end('ram and devices', resolve));
    await mon.play([{ expect: 'query-migrate', reply: { status: 'active' } }, { expect: 'query-migrate', reply: { status: 'completed' } }]);
    const cont = await mon.expect('cont');
    assert.equal(ga.received.filter((r) => r.execute === 'guest-fsfreeze-thaw').length, 0, 'still frozen until the guest runs again');
    mon.reply(cont, {});
    await ga.play([{ expect: 'guest-fsfreeze-thaw', reply: 2 }]);
    const times = await cutting;
    assert.deepEqual(order, ['transaction', 'record'], 'the record names the new layers once the snapshot is made, before the save');
    assert.deepEqual(got[1]?.arguments, {
      actions: [
        { type: 'blockdev-snapshot-sync', data: { device: 'disk0', 'snapshot-file': '/v/c1/overlays/disk0-0123abcd.qcow2', format: 'qcow2', mode: 'absolute-paths' } },
        { type: 'blockdev-snapshot-sync', data: { device: 'home', 'snapshot-file': '/v/c1/overlays/home-89abcdef.qcow2', format: 'qcow2', mode: 'absolute-paths' } },
      ],
    });
    // the RAM is private to the VM (a child maps its template's file copy-on-write): it goes in the stream
    assert.deepEqual(rest[0]?.arguments, { capabilities: [{ capability: 'x-ignore-shared', state: false }] });
    assert.equal(await readFile(statePath, 'utf8'), 'ram and devices', 'what QEMU streamed is the state file');
    assert.ok(times.pausedMs >= 0 && times.frozenMs >= times.pausedMs);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('disk-only: no migration between the snapshot and cont', async () => {
  const { statePath: _none, ...diskOnly } = plan();
  const cutting = cutCheckpoint(diskOnly);
  const { mon, ga } = await frozen();
  await mon.play([{ expect: 'stop' }, { expect: 'transaction' }, { expect: 'cont' }]);
  await ga.play([{ expect: 'guest-fsfreeze-thaw', reply: 2 }]);
  await cutting;
  assert.deepEqual(mon.received.map((r) => r.execute), ['qmp_capabilities', 'stop', 'transaction', 'cont']);
});

test('a failed save still resumes and thaws the guest, then reports QEMU\'s reason', async () => {
  const cutting = cutCheckpoint(plan());
  const { mon, ga } = await frozen();
  await mon.play([
    { expect: 'stop' },
    { expect: 'transaction' },
    { expect: 'migrate-set-capabilities' },
    { expect: 'migrate-set-parameters' },
    { expect: 'migrate' },
    { expect: 'query-migrate', reply: { status: 'failed', 'error-desc': 'cat: write error: No space left on device' } },
    { expect: 'cont' },
  ]);
  await ga.play([{ expect: 'guest-fsfreeze-thaw', reply: 2 }]);
  await assert.rejects(cutting, { code: 'VMFORK_QMP_ERROR', message: /No space left/ });
});

test('a refused snapshot resumes and thaws too; a refused freeze stops nothing', async () => {
  const cutting = cutCheckpoint(plan());
  const { mon, ga } = await frozen();
  await mon.play([{ expect: 'stop' }, { expect: 'transaction', error: { class: 'GenericError', desc: 'Could not create file: Permission denied' } }, { expect: 'cont' }]);
  await ga.play([{ expect: 'guest-fsfreeze-thaw', reply: 2 }]);
  await assert.rejects(cutting, hasCode('VMFORK_QMP_ERROR'));

  const again = cutCheckpoint(plan());
  const mon2 = await qmp.nextConnection();
  await mon2.negotiate();
  const ga2 = await qga.nextConnection();
  await ga2.answerSync();
  await ga2.play([{ expect: 'guest-fsfreeze-freeze', error: { class: 'GenericError', desc: 'failed to freeze /: Device or resource busy' } }]);
  // the freeze may have half-happened in the guest: a thaw is sent anyway
  await ga2.play([{ expect: 'guest-fsfreeze-thaw', reply: 0 }]);
  await assert.rejects(again, /freeze/);
  await mon2.closed;
  assert.deepEqual(mon2.received.map((r) => r.execute), ['qmp_capabilities'], 'the CPUs were never stopped');
});
