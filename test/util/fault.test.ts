import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FAULT_POINTS, FAULT_SCENARIOS, faultSwitch, isFaultPoint } from '../../src/util/index.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

test('every faultPoint() call in src/ names a registered point, and every registered point is called exactly once', () => {
  const calls = new Map<string, string[]>();
  // fault.ts itself only names one in its doc comment
  for (const file of sources(join(ROOT, 'src')).filter((f) => !f.endsWith('/util/fault.ts'))) {
    for (const m of readFileSync(file, 'utf8').matchAll(/\bfaultPoint\(\s*'([^']+)'\s*\)/g)) {
      const name = m[1] ?? '';
      calls.set(name, [...(calls.get(name) ?? []), file.slice(ROOT.length)]);
    }
  }
  assert.deepEqual([...calls.keys()].filter((n) => !isFaultPoint(n)), [], 'calls naming no registered point');
  assert.deepEqual(Object.keys(FAULT_POINTS).filter((n) => !calls.has(n)), [], 'registered points no code reaches: the walk would wait for a kill that never comes');
  assert.deepEqual([...calls].filter(([, at]) => at.length > 1), [], 'a point called from two places: the walk could not tell which one killed');
  for (const [name, info] of Object.entries(FAULT_POINTS)) assert.ok((FAULT_SCENARIOS as readonly string[]).includes(info.scenario), `${name}: a scenario the walk knows`);
});

test('the switch is off without VMFORK_TESTING=1, for an unknown point, or a malformed hit', () => {
  assert.equal(faultSwitch({ VMFORK_FAULT: 'fork.identity' }), undefined, 'a stray VMFORK_FAULT never kills a real server');
  assert.equal(faultSwitch({ VMFORK_TESTING: '1' }), undefined);
  assert.equal(faultSwitch({ VMFORK_TESTING: '1', VMFORK_FAULT: 'no.such-point' }), undefined);
  assert.equal(faultSwitch({ VMFORK_TESTING: '1', VMFORK_FAULT: 'fork.identity@0' }), undefined);
  assert.deepEqual(faultSwitch({ VMFORK_TESTING: '1', VMFORK_FAULT: 'fork.identity' }), { point: 'fork.identity', hit: 1 });
  assert.deepEqual(faultSwitch({ VMFORK_TESTING: '1', VMFORK_FAULT: 'phase1.script-done@3' }), { point: 'phase1.script-done', hit: 3 });
});

/** A node process that reaches fault.identity twice, printing before each hit; its exit and output. */
function reachTwice(env: Record<string, string>): Promise<{ signal: NodeJS.Signals | null; code: number | null; out: string; err: string }> {
  const fault = new URL('../../src/util/fault.js', import.meta.url).href;
  const script = `const { faultPoint } = await import(${JSON.stringify(fault)}); for (const i of [1, 2]) { console.log('before ' + i); faultPoint('fork.identity'); } console.log('done');`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve) => child.once('close', (code, signal) => resolve({ signal, code, out, err })));
}

test('on: the process dies by SIGKILL at the named hit, saying where on stderr first', async () => {
  const second = await reachTwice({ VMFORK_TESTING: '1', VMFORK_FAULT: 'fork.identity@2' });
  assert.equal(second.signal, 'SIGKILL');
  assert.equal(second.out, 'before 1\nbefore 2\n', 'the first hit passed, the second killed');
  assert.match(second.err, /vmfork fault: killed at fork\.identity@2/);
  const off = await reachTwice({ VMFORK_FAULT: 'fork.identity' });
  assert.deepEqual([off.code, off.signal, off.out], [0, null, 'before 1\nbefore 2\ndone\n'], 'without the test flag nothing happens');
});
