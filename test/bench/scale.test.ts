import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../../bench/bench-args.js';
import { parseScaleArgs, scaleSteps } from '../../bench/scale-args.js';
import { renderScaleMarkdown } from '../../bench/scale-report.js';
import { stepWouldOverrun, type ScaleBenchResult } from '../../bench/scale-bench.js';
import { cpuTicksOf, qemuNameOf } from '../../bench/scale-probes.js';

test('scale: defaults measure at 25, 50 and 100 children', () => {
  const o = parseScaleArgs([], '/out');
  assert.deepEqual(o.steps, [25, 50, 100]);
  assert.equal(o.children, 100);
  assert.equal(o.memory, '384M');
  assert.equal(o.outDir, '/out');
});

test('scale: --children 10 drops the larger steps and always ends at the pool size', () => {
  assert.deepEqual(parseScaleArgs(['--children', '10'], '/o').steps, [10]);
  assert.deepEqual(parseScaleArgs(['--children', '60'], '/o').steps, [25, 50, 60]);
  assert.deepEqual(scaleSteps([5, 2, 5], 8), [2, 5, 8]);
});

test('scale: bad flags are usage errors', () => {
  assert.throws(() => parseScaleArgs(['--children', '0'], '/o'), UsageError);
  assert.throws(() => parseScaleArgs(['--steps', '10,x'], '/o'), UsageError);
  assert.throws(() => parseScaleArgs(['--children', '4', '--claims', '5'], '/o'), UsageError);
  assert.throws(() => parseScaleArgs(['--nope'], '/o'), UsageError);
});

test('scale: utime + stime are read past a command name holding spaces and parentheses', () => {
  const stat = '4242 (qemu (x) 86) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 567 0 0 20 0 5 0 999 1000 100 18446744073709551615';
  assert.equal(cpuTicksOf(stat), 1234 + 567);
});

test('scale: a QEMU is ours only when its command line names the data dir', () => {
  const argv = ['qemu-system-x86_64', '-name', 'sc-7', '-drive', 'file=/tmp/vmfork-bench-x/vms/sc-7/disk.qcow2'].join('\0');
  assert.equal(qemuNameOf(argv, '/tmp/vmfork-bench-x'), 'sc-7');
  assert.equal(qemuNameOf(argv, '/tmp/vmfork-bench-y'), undefined);
  assert.equal(qemuNameOf(['node', '/tmp/vmfork-bench-x/'].join('\0'), '/tmp/vmfork-bench-x'), undefined);
});

test('scale: the report has one row per step and flags a total over the goal', () => {
  const load = { at: '', one: 1, five: 1, fifteen: 1, tasks: '1/1', otherQemu: 0 };
  const stats = { n: 2, min: 1, max: 2, mean: 1.5, p50: 1.5, p95: 2, sum: 3 };
  const step = (children: number, totalPercent: number): ScaleBenchResult['steps'][number] => ({
    children,
    running: children,
    wallMs: 1000,
    hostMemUsedMiB: 100,
    hostMemGrowthMiB: 50,
    pssMiB: stats,
    idleCpu: { windowSeconds: 60, perChildPercent: stats, totalPercent, serverPercent: 0.1 },
    listVmsMs: { n: 5, p50: 3, p99: 9, max: 9 },
    claimMs: null,
    claimServerMs: null,
    load,
  });
  const md = renderScaleMarkdown({
    benchmark: 'scale',
    version: 1,
    startedAt: '2026-12-03T23:00:00Z',
    finishedAt: '2026-12-03T23:30:00Z',
    options: parseScaleArgs(['--children', '50'], '/o'),
    machine: { nproc: 2, memTotalKiB: 24 * 1024 * 1024, kernel: 'k', node: 'n', accel: 'tcg', accelReason: 'no kvm', qemuVersion: '7', qemuBuild: '', revision: 'abc', dataDirFs: 'ext4' },
    load: { start: load, end: load },
    steps: [step(25, 20), step(50, 60)],
  });
  assert.match(md, /\| 25 \(25 running\) \|/);
  assert.match(md, /60 % \(over 50 %\)/);
  assert.doesNotMatch(md, /20 % \(over/);
  assert.match(md, /3 \/ 9 ms \(n 5\)/);
});

test('scale: a step is skipped when the pace of the last one would end it past the deadline', () => {
  const last = { children: 50, fromChildren: 25, wallMs: 250_000, measureMs: 60_000 };
  // 10 s a child: 50 more children take 500 s, plus 60 s of measuring
  assert.equal(stepWouldOverrun(last, 100, 1_000_000, 1_600_000), false);
  assert.equal(stepWouldOverrun(last, 100, 1_100_000, 1_600_000), true);
  assert.equal(stepWouldOverrun(undefined, 25, 9e9, 1), false);
});
