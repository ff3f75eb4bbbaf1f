import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildSample, ForkBenchRaw, ForkBenchResult, PathRun, RoundSample, TemplateSample } from '../../bench/fork-result.js';
import { renderForkMarkdown } from '../../bench/fork-report.js';
import { judgeTargets, summarizeFork } from '../../bench/fork-summary.js';
import type { ProcessMemory } from '../../bench/smaps.js';

const MiB = 1024;
const BOOT = { agent: 'b0a7e7e1-0000-4000-8000-00000000000a', script: 'b0a7e7e1-0000-4000-8000-00000000000b' };

function child(name: string, readyMs: number, bootId: string, fromWarm = false): ChildSample {
  return {
    name,
    pid: 1000,
    fromWarm,
    timings: { qmpMs: fromWarm ? 0 : 40, loadedMs: 60, runningMs: 62, agentMs: 140, readyMs },
    identityTotalMs: readyMs - 140,
    identitySteps: [{ step: 'hostname', ok: true, ms: 10 }, { step: 'ssh-host-keys', ok: true, ms: 30 }],
    bootId,
    overlayBytes: 1024 ** 2,
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

function template(path: 'agent' | 'script'): TemplateSample {
  return { name: `bench-${path}`, image: path === 'agent' ? 'default' : 'noagent', forkPath: path, coldBootSeconds: 21, prepareMs: 500, cutMs: 20, wallMs: 24_000, bootId: BOOT[path], memoryMiB: 512, tbSizeMiB: 32, stateBytes: 700_000, ramBytes: 512 * 1024 ** 2, ramPath: '/tmp/x/ram' };
}

function round(kind: RoundSample['kind'], ready: number[], bootId: string, failed = 0): RoundSample {
  const children = ready.map((ms, i) => child(`${kind}-${i + 1}`, ms, bootId, kind === 'warm'));
  const fails = Array.from({ length: failed }, (_, i) => ({ name: `f-${i}`, code: 'VMFORK_FORK_FAILED', message: 'boom' }));
  return { kind, label: kind, count: ready.length + failed, concurrency: kind === 'parallel' ? 2 : 1, wallMs: 2_500, children, failed: fails };
}

function path(p: 'agent' | 'script', scale: number): PathRun {
  const b = BOOT[p];
  return {
    path: p,
    template: template(p),
    rounds: [round('cold', [300, 350, 400].map((x) => x * scale), b), round('warm', [200, 240, 260].map((x) => x * scale), b), round('parallel', [500, 600].map((x) => x * scale), b, p === 'script' ? 1 : 0)],
    warmProcesses: [{ name: 'w1', pid: 1, memory: memory(20) }],
    memory: {
      count: 2,
      idleWaitMs: 10_000,
      memAvailableBeforeKiB: 20_000 * MiB,
      memAvailableAfterKiB: 19_900 * MiB,
      children: [{ name: 'm1', pid: 1, memory: memory(40 * scale) }, { name: 'm2', pid: 2, memory: memory(44 * scale) }],
      ...(p === 'agent' ? { ksm: { waitMs: 60_000, pagesSharing: 5000, pagesShared: 800, children: [{ name: 'm1', pid: 1, memory: memory(36) }] } } : {}),
    },
  };
}

function raw(): ForkBenchRaw {
  return {
    coldBoots: [20, 21.6, 22.5].map((s, i) => ({ name: `cold${i + 1}`, secondsToAgent: s, bootId: `cold-${i}` })),
    paths: [path('agent', 1), path('script', 4)],
    cli: [
      { mode: 'cold', wallMs: 1200, readyMs: 900, fromWarm: false },
      { mode: 'warm', wallMs: 1000, readyMs: 720, fromWarm: true },
      { mode: 'warm', wallMs: 1080, readyMs: 800, fromWarm: true },
    ],
    cliStart: { nodeMs: [60], bundledHelpMs: [150], unbundledHelpMs: [420] },
    agentInGuest: { rssKiB: 5 * MiB, pssKiB: 2 * MiB, privateDirtyKiB: 700 },
  };
}

function result(r: ForkBenchRaw): ForkBenchResult {
  const summary = summarizeFork(r);
  const load = { at: '2026-11-30T10:00:00.000Z', one: 1.5, five: 1.2, fifteen: 1, tasks: '2/140', otherQemu: 1 };
  return {
    benchmark: 'fork',
    version: 2,
    startedAt: '2026-11-30T10:00:00.000Z',
    finishedAt: '2026-11-30T10:20:00.000Z',
    options: { children: 3, coldRuns: 3, memory: '512M', parallel: 2, idleChildren: 2, idleWaitMs: 10_000, cliRuns: 1, ksm: true, outDir: '/tmp' },
    machine: { nproc: 2, memTotalKiB: 24684084, kernel: '6.1', node: 'v20', accel: 'tcg', accelReason: 'PVM detected; using TCG', qemuVersion: '7.2.22', qemuBuild: 'QEMU emulator version 7.2.22', revision: 'abc1234', dataDirFs: 'ext2/ext3' },
    load: { start: load, end: { ...load, one: 2 } },
    raw: r,
    summary,
    targets: judgeTargets(summary),
  };
}

test('summary: each path\'s rounds, memory, warm processes and KSM; the CLI calls against the cold boot; reboots against each template', () => {
  const s = summarizeFork(raw());
  assert.deepEqual(s.coldBootSeconds, { n: 3, min: 20, max: 22.5, mean: 21.367, p50: 21.6, p95: 22.41, sum: 64.1 });
  const [agent, script] = s.paths;
  assert.deepEqual([agent?.path, script?.path], ['agent', 'script']);
  assert.equal(agent?.cold?.readyMs?.p50, 350);
  assert.equal(agent?.warm?.readyMs?.p50, 240);
  assert.equal(agent?.warm?.phases.launchMs?.p50, 0, 'a warm process is launched already');
  assert.equal(agent?.cold?.phases.identityMs?.p50, 210);
  assert.equal(agent?.cold?.identityStepsMs['ssh-host-keys']?.p50, 30);
  assert.equal(script?.cold?.readyMs?.p50, 1400);
  assert.equal(script?.parallel?.failed, 1);
  assert.equal(agent?.memory?.pssMiB?.mean, 42);
  assert.equal(agent?.memory?.otherPssMiB?.p50, 14);
  assert.equal(agent?.memory?.ksm?.pssMiB?.mean, 36);
  assert.equal(agent?.warmProcessPssMiB?.mean, 20);
  assert.deepEqual(s.cli.warm.overheadMs?.p50, 280);
  assert.equal(s.cli.cold.speedup, 18);
  assert.equal(s.cli.warm.speedup, 20.8);
  assert.deepEqual(s.reboots, { checked: 16, rebooted: 0, unreadable: 0 });
  assert.deepEqual(s.agentInGuestMiB, { rss: 5, pss: 2, privateDirty: 0.7 });
});

test('targets on the agent path: ≤ limits met at the limit, ≥ limits for the CLI ratio, not measured without samples', () => {
  const byId = (r: ForkBenchRaw): Record<string, boolean | undefined> => Object.fromEntries(judgeTargets(summarizeFork(r)).map((t) => [t.id, t.met]));
  assert.deepEqual(byId(raw()), { 'ready-cold': true, 'ready-warm': true, parallel: true, pss: true, 'cli-cold': false, 'cli-warm': true, overlay: true, reboots: true });
  const empty: ForkBenchRaw = { coldBoots: [], paths: [], cli: [] };
  assert.ok(Object.values(byId(empty)).every((v) => v === undefined));
});

test('markdown: targets, the two paths side by side, the CLI call, the time breakdown, disk and reboots', () => {
  const md = renderForkMarkdown(result(raw()));
  assert.match(md, /^# Fork benchmark — 2026-11-30$/m);
  assert.match(md, /accelerator \*\*tcg\*\* \(PVM detected; using TCG\)/);
  assert.match(md, /^\| fork → customized-ready, fresh QEMU \| 350 ms \(p50\) \| ≤ 400 ms \| \*\*met\*\* \|$/m);
  assert.match(md, /^\| `vmfork fork --count 1` vs a cold boot, fresh QEMU \| 18× \(p50 ratio\) \| ≥ 20× \| \*\*not met\*\* \|$/m);
  assert.match(md, /^\| fork → customized-ready, fresh QEMU \(n=3\/3\) \| p50 350 ms, p95 395 ms \(62× a cold boot\) \| p50 1400 ms, p95 1580 ms \(15× a cold boot\) \|$/m);
  assert.match(md, /^\| 2 children in parallel \(engine default concurrency\) \| wall 2\.50 s; ready p50 550 ms \| wall 2\.50 s; ready p50 2200 ms — \*\*1 failed\*\* \|$/m);
  assert.match(md, /^\| after KSM merged pages \(--ksm\) \| PSS mean 36\.0 MiB, copy-on-write mean 5\.0 MiB \(5000 pages sharing after 60 s\) \| — \|$/m);
  assert.match(md, /^\| a warm process waiting \(PSS\) \| mean 20\.0 MiB/m);
  assert.match(md, /^\| the command around the fork \(wall − ready\) \| p50 300 ms \| p50 280 ms \|$/m);
  assert.match(md, /node alone p50 60 ms; `vmfork fork --help` \(node \+ the fork command's modules\) p50 150 ms bundled, p50 420 ms from the plain compiled tree/);
  assert.match(md, /^\| ↳ step ssh-host-keys \(guest side\) \| 30 ms \| 30 ms \| 30 ms \|$/m);
  assert.match(md, /^\| reboots \(guest boot_id vs its template's\) \| 0 of 16 children \|$/m);
  assert.doesNotMatch(md, /Run error/);
  assert.match(md, /Raw samples: `fork-2026-11-30\.json`/);
});

test('markdown of a failed run says so and shows n/a for what was not measured', () => {
  const r = result({ coldBoots: [], paths: [], cli: [] });
  const md = renderForkMarkdown({ ...r, error: 'VMFORK_IMAGE_BUILD_FAILED: no network' });
  assert.match(md, /## Run error\n\n```\nVMFORK_IMAGE_BUILD_FAILED: no network\n```/);
  assert.match(md, /^\| fork → customized-ready, warm QEMU \| n\/a \(p50\) \| ≤ 250 ms \| not measured \|$/m);
  assert.match(md, /Raw samples: `fork-2026-11-30-failed\.json`/);
});
