/**
 * `npm run bench -- lazy` (issue 14 item 8): the time to the first ready child on a host that has no replica yet,
 * with the copy first (replica copy + that host's template + fork) and lazily (the child forked at once from the
 * other host's template: memory by postcopy, disk over NBD), in the same run on the test datacenter (two hosts on
 * this machine's cores). Between runs the new host's replica is removed, so each run starts without it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VmforkError } from '../src/errors.js';
import { percentile } from '../src/util/index.js';
import { cliJson, startDatacenter, type TestDatacenter, type TestHost } from '../test/fixtures/test-hosts.js';
import { TEST_HOOKS } from '../test/fixtures/ladder.js';
import type { LazyBenchOptions } from './lazy-args.js';
import { readLoadAvg, readMachineFacts, type LoadAvg, type MachineFacts } from './machine-facts.js';

const SYSCTL = '/proc/sys/vm/unprivileged_userfaultfd';

export interface LazyRun {
  mode: 'copy' | 'lazy';
  /** From the start of h2's part (its copy, when first) to its first ready child. */
  firstReadyMs: number;
  /** Copy first: the replica copy's share of it. */
  copyMs?: number;
  /** Lazy: the child's fork → ready, and, counted from ready, the time until all its memory, then all its disk, were its own. */
  forkToReadyMs?: number;
  memoryMs?: number;
  disksMs?: number;
}

export interface LazyBenchResult {
  startedAt: string;
  options: LazyBenchOptions;
  machine: MachineFacts;
  load: { start: LoadAvg; end: LoadAvg };
  runs: LazyRun[];
  summary?: { copyP50Ms: number; lazyP50Ms: number; ratio: number };
  error?: string;
}

interface TaskView {
  result: {
    firstReady?: Record<string, { ms: number | null; lazy: boolean; skipped?: string; settled?: { memoryMs?: number; disksMs?: number; error?: string } }>;
    copies?: Record<string, number>;
    readyMs?: Record<string, number>;
  } | null;
}

const fail = (message: string): VmforkError => new VmforkError('VMFORK_FORK_FAILED', message);

async function onePool(dc: TestDatacenter, h1: TestHost, root: string, mode: LazyRun['mode'], opts: LazyBenchOptions): Promise<LazyRun> {
  const file = join(root, `bl-${mode}.json`);
  writeFileSync(file, JSON.stringify({ name: 'bl', image: 'default', datastore: 'main', size: { max: 2 }, naming: { pattern: 'bl-{n}' }, disks: { disposable: '64M', swap: '16M' }, memory: opts.memory, placement: { hosts: ['h1', 'h2'], strategy: 'spread', ...(mode === 'lazy' ? { lazyReplica: true } : {}) } }));
  const accepted = await cliJson<{ taskId: string }>(dc, h1, ['pool', 'create', '-f', file]);
  const watched = await dc.cli(h1, ['task', 'watch', accepted.taskId], { timeoutMs: 60 * 60_000 });
  if (watched.code !== 0) throw fail(`pool (${mode}): ${watched.stderr}${watched.stdout}`);
  const task = await cliJson<TaskView>(dc, h1, ['task', 'show', accepted.taskId]);
  const first = task.result?.firstReady?.h2;
  if (!first || first.ms === null) throw fail(`no first child on h2 (${mode}): ${JSON.stringify(task.result?.firstReady)}`);
  if ((mode === 'lazy') !== first.lazy) throw fail(`h2's first child was ${first.lazy ? '' : 'not '}lazy in the ${mode} run: ${first.skipped ?? ''}`);
  const pool = await cliJson<{ vms: { name: string; host: string }[] }>(dc, h1, ['pool', 'show', 'bl']);
  const child = pool.vms.find((v) => v.host === 'h2')?.name ?? '';
  const out: LazyRun = { mode, firstReadyMs: first.ms };
  if (mode === 'copy') out.copyMs = Math.round((task.result?.copies?.h2 ?? 0) * 1000);
  else {
    out.forkToReadyMs = task.result?.readyMs?.[child];
    out.memoryMs = first.settled?.memoryMs;
    out.disksMs = first.settled?.disksMs;
  }
  // h2 back to no replica: the pool, then h2's copy (with its template); h1's replica stays for the next run
  const rm = await dc.cli(h1, ['pool', 'rm', 'bl', '--wait'], { timeoutMs: 30 * 60_000 });
  if (rm.code !== 0) throw fail(`pool rm: ${rm.stderr}`);
  const replicas = await cliJson<{ id: string; hostId: string }[]>(dc, h1, ['replica', 'list']);
  for (const r of replicas.filter((x) => x.hostId === 'h2')) {
    const gone = await dc.cli(h1, ['replica', 'rm', r.id], { timeoutMs: 10 * 60_000 });
    if (gone.code !== 0) throw fail(`replica rm ${r.id}: ${gone.stderr}`);
  }
  return out;
}

export async function runLazyBench(opts: LazyBenchOptions, progress: (m: string) => void): Promise<LazyBenchResult> {
  const root = mkdtempSync(join(tmpdir(), 'vmfork-bench-lazy-'));
  const result: LazyBenchResult = { startedAt: new Date().toISOString(), options: opts, machine: await readMachineFacts(root), load: { start: await readLoadAvg(), end: await readLoadAvg() }, runs: [] };
  let dc: TestDatacenter | undefined;
  // a confined QEMU receives postcopy only with unprivileged userfaultfd (docs/lazy-replicas.md): on for the run
  const sysctl = readFileSync(SYSCTL, 'utf8').trim();
  writeFileSync(SYSCTL, '1');
  try {
    progress('test datacenter: PostgreSQL and two hosts');
    dc = await startDatacenter(root, ['h1', 'h2']);
    const [h1] = dc.hosts as [TestHost, TestHost];
    const key = randomBytes(32).toString('hex');
    for (const h of dc.hosts) {
      writeFileSync(join(h.home, '..', 'fleet.key'), key, { mode: 0o600 });
      await dc.startAgent(h, ['--heartbeat-seconds', '1', '--lost-after-seconds', '30', '--fleet-key-file', join(h.home, '..', 'fleet.key')]);
    }
    dc.startServer(h1);
    for (let i = 0; (await dc.cli(h1, ['pool', 'list', '--json'])).code !== 0; i++) {
      if (i > 240) throw fail('the server on h1 never answered');
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const built = await dc.cli(h1, ['image', 'build', '--name', 'default', '--hooks', TEST_HOOKS], { timeoutMs: 60 * 60_000 });
    if (built.code !== 0) throw fail(`image build: ${built.stderr}`);
    for (let round = 1; round <= opts.rounds; round++) {
      // alternated, so neither way always runs on a warmer host
      for (const mode of round % 2 ? (['copy', 'lazy'] as const) : (['lazy', 'copy'] as const)) {
        progress(`round ${round}: ${mode === 'copy' ? 'copy first' : 'lazy'}`);
        const r = await onePool(dc, h1, root, mode, opts);
        progress(`  h2's first child ready after ${(r.firstReadyMs / 1000).toFixed(1)} s`);
        result.runs.push(r);
      }
    }
    const p50 = (mode: LazyRun['mode']): number => Math.round(percentile(result.runs.filter((r) => r.mode === mode).map((r) => r.firstReadyMs), 50) ?? 0);
    const copyP50Ms = p50('copy');
    const lazyP50Ms = p50('lazy');
    result.summary = { copyP50Ms, lazyP50Ms, ratio: Math.round((copyP50Ms / Math.max(1, lazyP50Ms)) * 10) / 10 };
  } catch (err) {
    result.error = err instanceof Error ? err.message : String(err);
    progress(`failed: ${result.error}`);
  } finally {
    writeFileSync(SYSCTL, sysctl);
    const left = dc ? await dc.close() : [];
    if (left.length) result.error = `${result.error ? `${result.error}; ` : ''}left behind: ${left.join(', ')}`;
    rmSync(root, { recursive: true, force: true });
    result.load.end = await readLoadAvg();
  }
  return result;
}

const s = (ms: number | undefined): string => (ms === undefined ? '-' : `${(ms / 1000).toFixed(1)} s`);

/** The lazy benchmark as markdown: each run, then both ways' p50 side by side. */
export function renderLazyMarkdown(r: LazyBenchResult): string {
  const lines = [
    `# Lazy replica benchmark — ${r.startedAt.slice(0, 10)}`,
    '',
    `${r.machine.nproc} CPUs, ${r.machine.accel} (${r.machine.accelReason}); QEMU ${r.machine.qemuVersion}; vmfork ${r.machine.revision}; load ${r.load.start.one} at start, ${r.load.end.one} at end.`,
    `A pool of 2 (${r.options.memory}) spread over test hosts h1 and h2; h1 holds the replica and its template, h2 starts without them. Figure: from the start of h2's part to its first ready child. Both test hosts share this machine's cores and its loopback: a real network makes the copy slower and the lazy start's gain larger.`,
    '',
    '| run | way | first child on h2 ready | of which the copy | lazy: fork → ready | lazy: all its memory in (after ready) | lazy: all its disk its own (after ready, mirror) |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...r.runs.map((x, i) => `| ${i + 1} | ${x.mode === 'copy' ? 'copy first' : 'lazy'} | ${s(x.firstReadyMs)} | ${s(x.copyMs)} | ${s(x.forkToReadyMs)} | ${s(x.memoryMs)} | ${s(x.disksMs)} |`),
    '',
    r.summary ? `**p50: copy first ${s(r.summary.copyP50Ms)}, lazy ${s(r.summary.lazyP50Ms)}: the first child on a new host is ready ${r.summary.ratio}× sooner lazily.**` : '',
    r.error ? `\n**Error:** ${r.error.split('\n')[0] ?? ''}` : '',
  ];
  return `${lines.filter((l, i, a) => l !== '' || a[i - 1] !== '').join('\n')}\n`;
}
