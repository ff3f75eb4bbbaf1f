import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseForkArgs, UsageError } from '../../bench/bench-args.js';

test('defaults: 10 children, 3 cold runs, 512M, rounds of 10 and 20, 5 s idle', () => {
  assert.deepEqual(parseForkArgs([], '/out'), { children: 10, coldRuns: 3, memory: '512M', parallel: [10, 20], idleWaitMs: 5000, outDir: '/out' });
});

test('every option is read', () => {
  const o = parseForkArgs(['--children', '12', '--cold-runs', '5', '--memory', '1G', '--parallel', '4, 8', '--idle-wait', '2.5', '--tb-size', '16', '--out', '/x'], '/out');
  assert.deepEqual(o, { children: 12, coldRuns: 5, memory: '1G', parallel: [4, 8], idleWaitMs: 2500, tbSizeMiB: 16, outDir: '/x' });
});

test('bad values and unknown options are usage errors', () => {
  for (const argv of [['--children', '0'], ['--children', '2.5'], ['--cold-runs', 'x'], ['--memory', 'lots'], ['--parallel', '10,,20'], ['--idle-wait', '-1'], ['--nope'], ['extra']]) {
    assert.throws(() => parseForkArgs(argv, '/out'), UsageError, argv.join(' '));
  }
});
