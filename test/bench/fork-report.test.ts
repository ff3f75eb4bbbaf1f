import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildSample, ForkBenchRaw, ForkBenchResult } from '../../bench/fork-result.js';
import { renderForkMarkdown } from '../../bench/fork-report.js';
import { judgeTargets, summarizeFork } from '../../bench/fork-summary.js';
import type { ProcessMemory } from '../../bench/smaps.js';

const BOOT = 'b0a7e7e1-0000-4000-8000-000000000001';
const MiB = 1024;

function child(name: string, readyMs: number, overlayMiB: number, bootId = BOOT): ChildSample {
  return {
    name,
    pid: 1000,
    timings: { qmpMs: 40, loadedMs: 60, runningMs: 62, agentMs: 140, readyMs },
    identityTotalMs: readyMs - 140,
    identitySteps: [{ step: 'hostname', ok: true, ms: 10 }, { step: 'ssh-keys', ok: true, ms: 30 }],
    bootId,
    overlayBytes: overlayMiB * 1024 ** 2,
    overlayDataBytes: 0.25 * 1024 ** 2,
  };
}

function memory(pssMiB: number): ProcessMemory {
  return {
    rssKiB: 80 * MiB,
    pssKiB: pssMiB * MiB,
    privateDirtyKiB: 30 * MiB,
    guestRam: { sizeKiB: 512 * MiB, rssKiB: 40 * MiB, pssKiB: 8 * MiB, privateDirtyKiB: 5 * MiB },
    tcgCache: { sizeKiB: 32 * MiB, rssKiB: 20 * MiB, pssKiB: 20 * MiB, privateDirtyKiB: 20 * MiB },
  };
}

function raw(): ForkBenchRaw {
  const seq = [200, 220, 240, 260, 280].map((ms, i) => child(`s-${i + 1}`, ms, 0.5 + i * 0.25));
  const par = [child('p2-1', 400, 1), child('p2-2', 420, 1, 'another-boot-id')];
  return {
    coldBoots: [20, 21.6, 22.5].map((s, i) => ({ name: `cold${i + 1}`, secondsToAgent: s, bootId: `cold-${i}` })),
    template: {
      coldBootSeconds: 21,
      prepareMs: 500,
      cutMs: 20,
      wallMs: 24_000,
      bootId: BOOT,
      memoryMiB: 512,
      tbSizeMiB: 32,
      stateBytes: 700_000,
      ramBytes: 512 * 1024 ** 2,
      ramPath: '/tmp/x/ram',
    },
    rounds: [
      { kind: 'sequential', label: 's', count: 5, concurrency: 1, wallMs: 1300, children: seq, failed: [] },
      { kind: 'parallel', label: 'p2', count: 3, concurrency: 2, wallMs: 600, children: par, failed: [{ name: 'p2-3', code: 'VMFORK_FORK_FAILED', message: 'boom' }] },
    ],
    memory: {
      count: 2,
      idleWaitMs: 5000,
      memAvailableBeforeKiB: 20_000 * MiB,
      memAvailableAfterKiB: 19_900 * MiB,
      children: [
        { name: 'p2-1', pid: 1, memory: memory(36) },
        { name: 'p2-2', pid: 2, memory: memory(44) },
      ],
    },
  };
}

function result(r: ForkBenchRaw): ForkBenchResult {
  const summary = summarizeFork(r);
  const load = { at: '2026-11-25T10:00:00.000Z', one: 1.5, five: 1.2, fifteen: 1, tasks: '2/140', otherQemu: 1 };
  return {
    benchmark: 'fork',
    version: 1,
    startedAt: '2026-11-25T10:00:00.000Z',
    finishedAt: '2026-11-25T10:10:00.000Z',
    options: { children: 5, coldRuns: 3, memory: '512M', parallel: [2], idleWaitMs: 5000, outDir: '/tmp' },
    machine: { nproc: 2, memTotalKiB: 24684084, kernel: '6.1', node: 'v20', accel: 'tcg', accelReason: 'PVM detected; using TCG', qemuVersion: '7.2.22', qemuBuild: 'QEMU emulator version 7.2.22', revision: 'abc1234', dataDirFs: 'ext2/ext3' },
    load: { start: load, end: { ...load, one: 2 } },
    raw: r,
    summary,
    targets: judgeTargets(summary),
  };
}

test('summary: percentiles per figure, phase breakdown, failures, reboots against the template boot_id', () => {
  const s = summarizeFork(raw());
  assert.deepEqual(s.coldBootSeconds, { n: 3, min: 20, max: 22.5, mean: 21.367, p50: 21.6, p95: 22.41, sum: 64.1 });
  assert.equal(s.sequential?.readyMs?.p50, 240);
  assert.equal(s.sequential?.phases.identityMs?.p50, 100);
  assert.equal(s.sequential?.phases.loadMs?.p50, 20);
  assert.equal(s.sequential?.identityStepsMs['ssh-keys']?.p50, 30);
  assert.deepEqual(s.parallel, [{ count: 3, concurrency: 2, wallMs: 600, failed: 1, readyMs: s.parallel[0]?.readyMs }]);
  assert.equal(s.memory?.pssMiB?.mean, 40);
  assert.equal(s.memory?.otherPssMiB?.p50, 12);
  assert.equal(s.memory?.sumPssMiB, 80);
  assert.equal(s.memory?.nominalMiB, 1024);
  assert.equal(s.memory?.memAvailableDropMiB, 100);
  assert.equal(s.overlayMiB?.n, 7);
  assert.deepEqual(s.reboots, { checked: 7, rebooted: 1, unreadable: 0 });
  assert.equal(s.readySpeedup, 90);
});

test('targets: met at the limit, not met above it, not measured without samples', () => {
  const byId = (r: ForkBenchRaw): Record<string, boolean | undefined> => Object.fromEntries(judgeTargets(summarizeFork(r)).map((t) => [t.id, t.met]));
  assert.deepEqual(byId(raw()), { ready: true, pss: true, overlay: true, reboots: false });
  const empty: ForkBenchRaw = { coldBoots: [], rounds: [] };
  assert.deepEqual(byId(empty), { ready: undefined, pss: undefined, overlay: undefined, reboots: undefined });
});

test('markdown: one table with baseline, targets and verdicts, plus the time and PSS breakdowns', () => {
  const md = renderForkMarkdown(result(raw()));
  assert.match(md, /^# Fork benchmark — 2026-11-25$/m);
  assert.match(md, /accelerator \*\*tcg\*\* \(PVM detected; using TCG\)/);
  assert.match(md, /Load average \(1 min\): 1\.5 at start \(1 other QEMU\), 2 at end \(1 other QEMU\)/);
  assert.match(md, /^\| ↳ of which guest data clusters in the overlay \| p50 0\.25 MiB, max 0\.25 MiB \|/m);
  assert.match(md, /^\| cold boot → agent \(baseline, n=3\) \| p50 21\.6 s \(min 20\.0 s, max 22\.5 s\) \| 1× \|/m);
  assert.match(md, /^\| fork → customized-ready \(sequential, n=5\) \| p50 240 ms, p95 276 ms \| 90× faster \| ≤ 250 ms \(p50\) \| \*\*met\*\* \|$/m);
  assert.match(md, /^\| 3 children in parallel \(concurrency 2\) \| wall 0\.60 s; ready p50 410 ms — \*\*1 failed\*\* \|/m);
  assert.match(md, /^\| idle child PSS \(n=2, 5 s after ready\) \| mean 40\.0 MiB, p50 40\.0 MiB, max 44\.0 MiB \|.*\| ≤ 40 MiB \(mean\) \| \*\*met\*\* \|$/m);
  assert.match(md, /^\| sum PSS of 2 idle children \| 80 MiB vs nominal 1024 MiB \(7\.8%\) \| host MemAvailable dropped 100 MiB \|/m);
  assert.match(md, /^\| reboots per child \(guest boot_id vs template\) \| 1 of 7 children \|.*\| \*\*not met\*\* \|$/m);
  assert.match(md, /^\| ↳ step ssh-keys \(guest side, 10 ms resolution\) \| 30 ms \| 30 ms \|$/m);
  assert.match(md, /^\| TCG translation cache \(anonymous rwx mapping\) \| 20\.0 MiB \|/m);
  assert.doesNotMatch(md, /Run error/);
  assert.match(md, /Raw samples: `fork-2026-11-25\.json`/);
});

test('markdown of a failed run says so and shows n/a for what was not measured', () => {
  const r = result({ coldBoots: [], rounds: [] });
  const md = renderForkMarkdown({ ...r, error: 'VMFORK_IMAGE_BUILD_FAILED: no network' });
  assert.match(md, /## Run error\n\n```\nVMFORK_IMAGE_BUILD_FAILED: no network\n```/);
  assert.match(md, /^\| fork → customized-ready \(sequential, n=0\) \| n\/a \| n\/a \| ≤ 250 ms \(p50\) \| not measured \|$/m);
  assert.match(md, /Raw samples: `fork-2026-11-25-failed\.json`/);
});
