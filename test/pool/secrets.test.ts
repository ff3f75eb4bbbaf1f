import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { VmforkError } from '../../src/errors.js';
import { listTaskEvents } from '../../src/store/index.js';
import type { VmDeps } from '../../src/vm/index.js';
import { deskSpec, ScriptedParts, withPool } from './scripted-parts.js';
import type { PoolForkOptions } from '../../src/pool/parts.js';
import { storeText } from '../helpers/store.js';

/**
 * A fork whose per-child hook runs with `set -x` and fails: the REAL phase 2 customizer (poolCustomizer) is handed a
 * scripted guest agent that echoes the machine password it gets on stdin into stderr, exactly as a shell trace
 * would, and exits 4. Everything after that is the real path: the customizer's error, converge, the task's error and
 * events, the server's log, the store.
 */
class TracingHookParts extends ScriptedParts {
  passwords: string[] = [];
  errors: VmforkError[] = [];

  override async forkChildren(_deps: VmDeps, options: PoolForkOptions): Promise<{ registered: string[]; skipped: string[] }> {
    for (const name of options.names ?? []) {
      const agent = {
        exec: (_path: string, _args: string[], o: { input?: string }): Promise<{ exitCode: number; stdout: Buffer; stderr: Buffer }> => {
          const pw = (o.input ?? '').trim();
          this.passwords.push(pw);
          return Promise.resolve({
            exitCode: 4,
            stdout: Buffer.from('@@hook /usr/local/lib/vmfork/per-child/90-fail-xtrace.sh rc=4\n'),
            stderr: Buffer.from(`+ IFS= read -r pw\n+ echo got ${pw}\ngot ${pw}\n+ exit 4\n`),
          });
        },
      };
      try {
        await options.customize?.(agent as never, { name, ip: '10.231.0.9', mac: 'f2:00:00:00:00:09' });
        throw new Error('the hook was expected to fail');
      } catch (err) {
        this.errors.push(err as VmforkError);
        options.onChild?.({ name, error: err as VmforkError });
      }
    }
    return { registered: [], skipped: [] };
  }
}

const parts = new TracingHookParts();

test('a hook run with set -x that prints the machine password: the password is in no error, event, log line or store file', withPool(async ({ deps, service, ended }) => {
  const spec = deskSpec({ size: { max: 1 }, customize: { machinePassword: true, perChild: [{ path: '/usr/local/lib/vmfork/per-child/90-fail-xtrace.sh' }] } });
  const task = await ended((await service.createPool(spec)).taskId);
  assert.equal(task.state, 'failed');
  const [pw] = parts.passwords;
  assert.ok(pw && pw.length >= 16, 'the hook was handed a password');
  const [hookError] = parts.errors;
  assert.equal(hookError?.code, 'VMFORK_CUSTOMIZE_FAILED');
  const hookText = `${hookError?.message ?? ''} ${JSON.stringify(hookError?.details)}`;
  assert.match(hookText, /got \[redacted\]/, 'the hook\'s trace is kept, the password in it replaced');
  assert.match(task.lastError?.message ?? '', /per-child hook .*90-fail-xtrace\.sh exited 4/);
  const events = JSON.stringify(await listTaskEvents(deps.db, task.id));
  const logs = (await Promise.all((await readdir(deps.home.logs)).map((f) => readFile(join(deps.home.logs, f), 'utf8')))).join('');
  assert.match(logs, /task failed/, 'the failure was logged');
  const store = await storeText(deps.home);
  assert.ok(store.length > 0, 'the store was read');
  for (const [where, text] of [['task', JSON.stringify(task)], ['events', events], ['log', logs], ['store', store]] as const) {
    assert.ok(!text.includes(pw), `the password is in the ${where}`);
  }
}, { parts, logToFile: true }));
