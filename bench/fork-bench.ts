import { tmpdir } from 'node:os';
import { VmforkError } from '../src/errors.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { createBenchHome, ensureBenchImage, type BenchHome } from './bench-home.js';
import { readChildrenMemory } from './child-probes.js';
import type { ForkBenchOptions, ForkBenchRaw, ForkBenchResult, MemoryRound, RoundSample } from './fork-result.js';
import { forkRound, measureColdBoots, measureTemplate, probeAndDestroy, type Progress } from './fork-phases.js';
import { judgeTargets, summarizeFork } from './fork-summary.js';
import { readLoadAvg, readMachineFacts, readMeminfoKiB, type LoadAvg } from './machine-facts.js';

/**
 * The whole fork benchmark in one run on one machine: baseline cold boots, the template, sequential forks
 * (latency), parallel rounds (wall time; the last one also gives idle memory), overlay sizes and boot_ids.
 * Whatever fails, everything the run started is destroyed, and what was measured before the failure is returned
 * with `error` set.
 */
export async function runForkBench(opts: ForkBenchOptions, progress: Progress): Promise<ForkBenchResult> {
  const startedAt = new Date().toISOString();
  const load: { start: LoadAvg; atMemory?: LoadAvg } = { start: await readLoadAvg() };
  const raw: ForkBenchRaw = { coldBoots: [], rounds: [] };
  // read before the data dir exists (nothing to clean up if it throws); the data dir is created under tmpdir()
  const machine = await readMachineFacts(tmpdir());
  const h = await createBenchHome();
  progress(`data dir ${h.root}; netns prefix ${process.env.VMFORK_NETNS_PREFIX ?? '(its own)'}; load ${load.start.one}`);
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
    progress('image: registering (built into the image cache first if missing — that takes minutes)');
    await ensureBenchImage(h);
    await runPhases(h, opts, raw, load, progress);
  } catch (err) {
    error = err instanceof Error ? (err.stack ?? err.message) : String(err);
    progress(`FAILED: ${error.split('\n')[0]}`);
  } finally {
    const failed = raw.rounds.flatMap((r) => r.failed);
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
    version: 1,
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

async function runPhases(h: BenchHome, opts: ForkBenchOptions, raw: ForkBenchRaw, load: { atMemory?: LoadAvg }, progress: Progress): Promise<void> {
  raw.coldBoots = await measureColdBoots(h, opts, progress);
  raw.template = await measureTemplate(h, opts, progress);
  const seq = await forkRound(h, 'sequential', 's', opts.children, progress);
  raw.rounds.push(seq);
  assertSomeReady(seq);
  await probeAndDestroy(h, seq);
  const sizes = [...opts.parallel].sort((a, b) => a - b);
  for (const [i, count] of sizes.entries()) {
    const last = i === sizes.length - 1;
    const memAvailableBeforeKiB = await readMeminfoKiB('MemAvailable');
    const round = await forkRound(h, 'parallel', `p${count}`, count, progress);
    raw.rounds.push(round);
    assertSomeReady(round);
    if (last) {
      // idle first: right after `ready` the guests still run the tail of the identity work
      await sleep(opts.idleWaitMs);
      load.atMemory = await readLoadAvg(h.root);
      const memory: MemoryRound = {
        count: round.children.length,
        idleWaitMs: opts.idleWaitMs,
        memAvailableBeforeKiB,
        memAvailableAfterKiB: await readMeminfoKiB('MemAvailable'),
        children: await readChildrenMemory(round.children, raw.template.ramPath),
      };
      raw.memory = memory;
      progress(`memory of ${memory.count} idle children read`);
    }
    await probeAndDestroy(h, round);
  }
}

/** A round where no child became ready measures nothing: stop there rather than fork the next rounds to fail too. */
function assertSomeReady(round: RoundSample): void {
  if (round.children.length === 0) {
    throw new VmforkError('VMFORK_FORK_FAILED', `every child of round ${round.label} failed; first: ${round.failed[0]?.name}: ${round.failed[0]?.message}`);
  }
}
