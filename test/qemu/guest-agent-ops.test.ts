import assert from 'node:assert/strict';
import { test } from 'node:test';
import { guestExec, guestReadFile, type AgentExecutor } from '../../src/qemu/guest-agent-ops.js';

/** An agent whose answers come from `reply`; records the commands it was sent. */
function fakeAgent(reply: (command: string) => unknown): AgentExecutor & { sent: string[] } {
  const sent: string[] = [];
  return {
    sent,
    execute: <T>(command: string): Promise<T> => {
      sent.push(command);
      return Promise.resolve(reply(command) as T);
    },
  };
}

test('guestReadFile of a file that never ends gives up past maxBytes (and closes its handle)', async () => {
  const agent = fakeAgent((c) => (c === 'guest-file-open' ? 7 : c === 'guest-file-read' ? { count: 4, 'buf-b64': Buffer.from('zzzz').toString('base64'), eof: false } : {}));
  await assert.rejects(guestReadFile(agent, '/dev/zero', { maxBytes: 10 }), { code: 'VMFORK_AGENT_ERROR', message: /\/dev\/zero: more than 10 B/ });
  assert.equal(agent.sent.filter((c) => c === 'guest-file-read').length, 3);
  assert.equal(agent.sent.at(-1), 'guest-file-close');
});

test('guestReadFile reads up to EOF', async () => {
  let reads = 0;
  const agent = fakeAgent((c) => (c === 'guest-file-open' ? 1 : c === 'guest-file-read' ? { count: 2, 'buf-b64': Buffer.from('ab').toString('base64'), eof: ++reads === 2 } : {}));
  assert.equal((await guestReadFile(agent, '/etc/x')).toString(), 'abab');
});

test('guestExec still running at its deadline is VMFORK_AGENT_TIMEOUT, after a few backed-off looks', async () => {
  const agent = fakeAgent((c) => (c === 'guest-exec' ? { pid: 42 } : { exited: false }));
  await assert.rejects(guestExec(agent, '/bin/sleep', ['9'], { timeoutMs: 200 }), { code: 'VMFORK_AGENT_TIMEOUT', message: /guest pid 42\) still running after 200 ms/ });
  const looks = agent.sent.filter((c) => c === 'guest-exec-status').length;
  // 5, 10, 20, 40, 50, 50… ms between looks: a handful in 200 ms, not one per millisecond (a loaded host's late
  // timers make fewer, never more)
  assert.ok(looks >= 1 && looks <= 10, `${looks} looks`);
});

test('guestExec returns the exit status once the process has exited', async () => {
  let looks = 0;
  const agent = fakeAgent((c) => (c === 'guest-exec' ? { pid: 1 } : ++looks < 3 ? { exited: false } : { exited: true, exitcode: 3, 'out-data': Buffer.from('hi').toString('base64') }));
  const r = await guestExec(agent, '/bin/true', []);
  assert.deepEqual([r.exitCode, r.stdout.toString(), looks], [3, 'hi', 3]);
});
