import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseForkArgs, UsageError } from '../../bench/bench-args.js';
import { parseProvisionArgs } from '../../bench/provision-args.js';

test('defaults: 10 children per path and mode, 3 cold runs, 512M, 10 in parallel, 20 idle for 10 s, 3 CLI calls, no KSM', () => {
  assert.deepEqual(parseForkArgs([], '/out'), { children: 10, coldRuns: 3, memory: '512M', parallel: 10, idleChildren: 20, idleWaitMs: 10_000, cliRuns: 3, ksm: false, outDir: '/out' });
});

test('every option is read', () => {
  const o = parseForkArgs(['--children', '12', '--cold-runs', '5', '--memory', '1G', '--parallel', '8', '--idle', '6', '--idle-wait', '2.5', '--cli-runs', '2', '--ksm', '--tb-size', '16', '--out', '/x'], '/out');
  assert.deepEqual(o, { children: 12, coldRuns: 5, memory: '1G', parallel: 8, idleChildren: 6, idleWaitMs: 2500, cliRuns: 2, ksm: true, tbSizeMiB: 16, outDir: '/x' });
});

test('bad values and unknown options are usage errors', () => {
  for (const argv of [['--children', '0'], ['--children', '2.5'], ['--cold-runs', 'x'], ['--memory', 'lots'], ['--parallel', '10,20'], ['--idle', '0'], ['--idle-wait', '-1'], ['--cli-runs', 'many'], ['--nope'], ['extra']]) {
    assert.throws(() => parseForkArgs(argv, '/out'), UsageError, argv.join(' '));
  }
});

test('provision: defaults, every option, and bad values as usage errors', () => {
  assert.deepEqual(parseProvisionArgs(['--concurrency', '2'], '/out'), { count: 10, concurrency: 2, memory: '384M', outDir: '/out' });
  assert.deepEqual(parseProvisionArgs(['--count', '3', '--concurrency', '1', '--memory', '512M', '--out', '/x'], '/out'), { count: 3, concurrency: 1, memory: '512M', outDir: '/x' });
  for (const argv of [['--count', '0'], ['--concurrency', 'x'], ['--memory', 'lots'], ['--nope'], ['extra']]) {
    assert.throws(() => parseProvisionArgs(argv, '/out'), UsageError, argv.join(' '));
  }
});
