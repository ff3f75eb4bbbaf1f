import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { VmforkError } from '../src/errors.js';
import { destroyVm } from '../src/vm/index.js';
import { createBenchHome, ensureBenchImages, type BenchHome } from './bench-home.js';
import { readAgentInGuest, readMemories } from './child-probes.js';
import { measureCli, measureCliStart } from './cli-phase.js';
import type { ForkBenchOptions, ForkBenchRaw, ForkBenchResult, ForkPath, MemoryRound, PathRun, RoundSample, TemplateSample } from './fork-result.js';
import { forkRound, measureColdBoots, measureTemplate, probeAndDestroy, warmRound, type Progress } from './fork-phases.js';
import { judgeTargets, summarizeFork } from './fork-summary.js';
import { withKsm } from './ksm.js';
import { readLoadAvg, readMachineFacts, readMeminfoKiB, type LoadAvg } from './machine-facts.js';

/** Each path's template and the image it is cut from: the agent path's image carries vmfork-guest. */
const PATHS: readonly { path: ForkPath; image: string }[] = [
  { path: 'agent', image: 'default' },
  { path: 'script', image: 'noagent' },
];

/**
 * The whole fork benchmark in one run on one machine: baseline cold boots; then for each path (vmfork-guest, and the
 * identity script through qemu-ga on an image without the agent) its template, children forked one at a time from
 * fresh QEMUs and from warm ones, a parallel round, idle children's memory; `vmfork fork --count 1` of the shipped
 * binary with and without a warm process. Whatever fails, everything the run started is destroyed, and what was
 * measured before the failure is returned with `error` set.
 */
export async function runForkBench(opts: ForkBenchOptions, progress: Progress): Promise<ForkBenchResult> {
  const startedAt = new Date().toISOString();
  const load: { start: LoadAvg; atMemory?: LoadAvg } = { start: await readLoadAvg() };
  const raw: ForkBenchRaw = { coldBoots: [], paths: [], cli: [] };
  // read before the data dir exists (nothing to clean up if it throws); the data dir is created under tmpdir()
  const machine = await readMachineFacts(tmpdir());
  const h = await createBenchHome();
  progress(`data dir ${h.root}; load ${load.start.one}`);
  // Ctrl-C or a kill must not leave QEMU processes or namespaces behind: clean up, then exit.
  const onSignal = (signal: NodeJS.Signals): void => {
    progress(`${signal}: cleaning up`);
    void h.cleanup().finally(() => process.exit(128 + (signal === 'SIGINT' ? 2 : 15)));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let error: string | undefined;
  try {
    progress(`${machine.nproc} CPUs, ${machine.accel} (${machine.accelReason}), QEMU ${machine.qemuVersion}`);
    progress('images: registering (built into the image cache first if missing — that takes minutes)');
    await ensureBenchImages(h);
    raw.coldBoots = await measureColdBoots(h, opts, progress);
    for (const { path, image } of PATHS) {
      const run: PathRun = { path, rounds: [], warmProcesses: [] };
      raw.paths.push(run);
      await runPath(h, opts, run, image, raw, load, progress);
    }
    raw.cliStart = await measureCliStart(3);
  } catch (err) {
    error = err instanceof Error ? (err.stack ?? err.message) : String(err);
    progress(`FAILED: ${error.split('\n')[0]}`);
  } finally {
    const failed = raw.paths.flatMap((p) => p.rounds.flatMap((r) => r.failed));
    if (failed.length) error = [error, `${failed.length} children failed to fork; first: ${failed[0]?.name}: ${failed[0]?.message}`].filter(Boolean).join('\n');
    const problems = await h.cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (problems.length) {
      progress(`cleanup problems: ${problems.join('; ')}`);
      error = [error, `cleanup: ${problems.join('; ')}`].filter(Boolean).join('\n');
    } else progress('cleanup: every VM, template, namespace and the data dir removed');
  }
  const summary = summarizeFork(raw);
  return {
    benchmark: 'fork',
    version: 2,
    startedAt,
    finishedAt: new Date().toISOString(),
    options: opts,
    machine,
    load: { ...load, end: await readLoadAvg(h.root) },
    raw,
    summary,
    targets: judgeTargets(summary),
    ...(error ? { error } : {}),
  };
}

async function runPath(h: BenchHome, opts: ForkBenchOptions, run: PathRun, image: string, raw: ForkBenchRaw, load: { atMemory?: LoadAvg }, progress: Progress): Promise<void> {
  const p = run.path === 'agent' ? 'a' : 's';
  const t = await measureTemplate(h, `bench-${run.path}`, image, opts, progress);
  run.template = t;
  const keep = async (round: RoundSample): Promise<void> => {
    run.rounds.push(round);
    assertSomeReady(round);
    if (round.kind === 'parallel') await probeAndDestroy(h, round.children);
  };
  await keep(await forkRound(h, t.name, 'cold', `${p}c`, opts.children, progress));
  const warm = await warmRound(h, t, `${p}w`, opts.children, progress);
  run.warmProcesses = warm.warmProcesses;
  await keep(warm.round);
  await keep(await forkRound(h, t.name, 'parallel', `${p}p`, opts.parallel, progress));
  run.memory = await memoryRound(h, opts, t, `${p}m`, run, raw, progress);
  if (run.path === 'agent') {
    load.atMemory = await readLoadAvg(h.root);
    raw.cli = await measureCli(h, t.name, opts.cliRuns, progress);
  }
}

/**
 * `idleChildren` children forked (the engine's default concurrency), left idle, then their memory read back to back;
 * on the agent path also vmfork-guest's own memory in one guest, and (with --ksm) the same children after KSM ran.
 */
async function memoryRound(h: BenchHome, opts: ForkBenchOptions, t: TemplateSample, label: string, run: PathRun, raw: ForkBenchRaw, progress: Progress): Promise<MemoryRound> {
  const memAvailableBeforeKiB = await readMeminfoKiB('MemAvailable');
  const round = await forkRound(h, t.name, 'idle', label, opts.idleChildren, progress);
  run.rounds.push(round);
  try {
    assertSomeReady(round);
    // idle first: right after `ready` the guests still finish the service kicks
    await sleep(opts.idleWaitMs);
    const memory: MemoryRound = {
      count: round.children.length,
      idleWaitMs: opts.idleWaitMs,
      memAvailableBeforeKiB,
      memAvailableAfterKiB: await readMeminfoKiB('MemAvailable'),
      children: await readMemories(round.children, t.ramPath),
    };
    progress(`memory of ${memory.count} idle ${t.forkPath}-path children read`);
    const first = round.children[0];
    if (t.forkPath === 'agent' && first) raw.agentInGuest = await readAgentInGuest(h, first.name).catch(() => undefined);
    if (opts.ksm && t.forkPath === 'agent') {
      const waitMs = 60_000;
      const merged = await withKsm(waitMs, () => readMemories(round.children, t.ramPath));
      memory.ksm = { waitMs, pagesSharing: merged.pagesSharing, pagesShared: merged.pagesShared, children: merged.value };
      progress(`KSM: ${merged.pagesSharing} pages sharing after ${waitMs / 1000} s`);
    }
    return memory;
  } finally {
    for (const c of round.children) await destroyVm(h, c.name);
  }
}

/** A round where no child became ready measures nothing: stop there rather than fork the next rounds to fail too. */
function assertSomeReady(round: RoundSample): void {
  if (round.children.length === 0) {
    throw new VmforkError('VMFORK_FORK_FAILED', `every child of round ${round.label} failed; first: ${round.failed[0]?.name}: ${round.failed[0]?.message}`);
  }
}
