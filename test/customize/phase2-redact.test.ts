import { test } from 'node:test';
import assert from 'node:assert/strict';
import { poolCustomizer } from '../../src/customize/index.js';
import type { GuestAgentClient } from '../../src/qemu/index.js';

const HOOK = '/usr/local/lib/vmfork/per-child/90-fail-xtrace.sh';
const spec = { name: 'desk', customize: { perChild: [{ path: HOOK, args: { domain: 'corp.example' }, timeoutSeconds: 5 }], machinePassword: true } };

/**
 * A scripted agent: the exec reads the password from its stdin as the runner hands it, and answers the way a hook run
 * with `set -x` fails (the trace prints the password on stderr, and a careless hook echoes it on stdout too).
 */
function xtraceAgent(seen: { password?: string }): GuestAgentClient {
  const exec = (_path: string, _args: readonly string[], options: { input?: string }) => {
    const password = (options.input ?? '').split('\n')[0] ?? '';
    seen.password = password;
    const stderr = [`+ IFS= read -r pw`, `+ printf %s\\n ${password}`, `+ echo joining the domain failed with ${password}`, 'joining the domain failed', '+ exit 4'].join('\n');
    return Promise.resolve({ exitCode: 4, stdout: Buffer.from(`debug: ${password}\n@@hook ${HOOK} rc=4\n`), stderr: Buffer.from(`${stderr}\n`), truncated: false });
  };
  return { exec } as unknown as GuestAgentClient;
}

test('a per-child hook that prints the machine password (set -x) fails with [redacted] in its message and details, never the password', async () => {
  const customize = poolCustomizer(spec);
  assert.ok(customize);
  const seen: { password?: string } = {};
  const err = await customize(xtraceAgent(seen), { name: 'desk-1', ip: '10.0.0.2', mac: '52:54:00:00:00:02' }).then(
    () => assert.fail('the hook failed: the customizer must throw'),
    (e: unknown) => e as { code: string; message: string; details: Record<string, unknown> },
  );
  const password = seen.password ?? '';
  assert.equal(password.length, 32, 'the runner handed the hook a password on stdin');
  assert.equal(err.code, 'VMFORK_CUSTOMIZE_FAILED');
  assert.match(err.message, /per-child hook \/usr\/local\/lib\/vmfork\/per-child\/90-fail-xtrace\.sh exited 4/);
  assert.match(err.message, /\+ printf %s\\n \[redacted\]/);
  assert.match(String(err.details.stderrTail), /failed with \[redacted\]/);
  const everything = JSON.stringify({ message: err.message, details: err.details, json: (err as unknown as { toJSON(): unknown }).toJSON() });
  assert.ok(!everything.includes(password), 'the password appears nowhere in the error');
});

test('a hook that fails without printing the password keeps its stderr tail as it was', async () => {
  const customize = poolCustomizer({ name: 'desk', customize: { perChild: spec.customize.perChild, machinePassword: false } });
  assert.ok(customize);
  const agent = { exec: () => Promise.resolve({ exitCode: 3, stdout: Buffer.from(`@@hook ${HOOK} rc=3\n`), stderr: Buffer.from('licence server unreachable\n'), truncated: false }) } as unknown as GuestAgentClient;
  await assert.rejects(customize(agent, { name: 'desk-1', ip: '10.0.0.2', mac: '52:54:00:00:00:02' }), (e: { message: string; details: { stderrTail: string } }) => {
    assert.equal(e.details.stderrTail, 'licence server unreachable');
    assert.match(e.message, /exited 3:\nlicence server unreachable$/);
    return true;
  });
});
