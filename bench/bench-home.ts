import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { homeLayout, type HomeLayout } from '../src/config/index.js';
import { deleteNetwork, listNetworks } from '../src/network/index.js';
import { openStore, type Db } from '../src/store/index.js';
import { listTemplates, removeTemplate } from '../src/template/index.js';
import { createLogger, run, type Logger } from '../src/util/index.js';
import { destroyVm, listVmsReconciled, type VmDeps } from '../src/vm/index.js';

/** dist/bench/ → dist/src/cli/main.js: the real CLI, run as a user would. */
const CLI = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');

/** A throw-away data dir owned by one bench run: everything in its store was created by this run. */
export interface BenchHome extends VmDeps {
  root: string;
  home: HomeLayout;
  db: Db;
  log: Logger;
  /** Destroys everything the run created and removes the data dir; runs once, later calls share the result. */
  cleanup(): Promise<string[]>;
}

export async function createBenchHome(): Promise<BenchHome> {
  // short path: QEMU socket paths must fit in 107 bytes
  const root = await mkdtemp(join(tmpdir(), 'vmfork-bench-'));
  const home = homeLayout(root);
  const db = await openStore(home.db);
  const log = createLogger(home.logs);
  const h: Omit<BenchHome, 'cleanup'> = { root, home, db, log };
  let cleaning: Promise<string[]> | undefined;
  return { ...h, cleanup: () => (cleaning ??= cleanupHome(h)) };
}

/**
 * Registers the two images in the bench home — `default` (vmfork-guest: the agent path) and `noagent` (without it:
 * the script path) — each built into VMFORK_IMAGE_CACHE first when missing (minutes), else instant.
 */
export async function ensureBenchImages(h: Pick<BenchHome, 'root'>): Promise<void> {
  await run(process.execPath, [CLI, '--home', h.root, 'image', 'build', '--name', 'default'], { timeoutMs: 3_600_000 });
  await run(process.execPath, [CLI, '--home', h.root, 'image', 'build', '--name', 'noagent', '--no-guest-agent'], { timeoutMs: 3_600_000 });
}

/**
 * Children first (a template refuses removal while it has any), then templates (which also kill a parent left
 * by an interrupted creation), then any VM still recorded, then networks (refused while leases remain), then the
 * data dir. Every step is attempted even when an earlier one failed; the problems are returned, not thrown.
 */
async function cleanupHome(h: Omit<BenchHome, 'cleanup'>): Promise<string[]> {
  const problems: string[] = [];
  const attempt = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      problems.push(`${what}: ${(err as Error).message.split('\n')[0]}`);
    }
  };
  for (const vm of await listVmsReconciled(h)) if (vm.role !== 'template') await attempt(`destroy ${vm.name}`, () => destroyVm(h, vm.name));
  for (const t of await listTemplates(h)) await attempt(`remove template ${String(t.name)}`, () => removeTemplate(h, String(t.name), { force: true }));
  for (const vm of await listVmsReconciled(h)) await attempt(`destroy ${vm.name}`, () => destroyVm(h, vm.name));
  for (const n of await listNetworks(h.db)) await attempt(`delete network ${n.name}`, () => deleteNetwork(h.db, n.name));
  // the data dir's path is unique to this run: a QEMU naming it can only be one this run started
  const left = await run('pgrep', ['-f', `qemu-system.*${h.root}/`], { allowFailure: true });
  for (const pid of left.stdout.split('\n').filter(Boolean).map(Number)) {
    problems.push(`QEMU pid ${pid} outlived its record; killed`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await attempt('close store', () => h.db.destroy());
  await attempt(`remove ${h.root}`, () => rm(h.root, { recursive: true, force: true }));
  return problems;
}

/**
 * Runs a benchmark's body in its home: a failure is recorded in `result.error` (the partial figures stay), and the
 * home is cleaned up whatever happened, what cleanup could not remove added to the error.
 */
export async function runInHome(h: Pick<BenchHome, 'cleanup'>, result: { error?: string }, progress: (m: string) => void, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    result.error = err instanceof Error ? (err.stack ?? err.message) : String(err);
    progress(`FAILED: ${result.error.split('\n')[0] ?? ''}`);
  } finally {
    const problems = await h.cleanup();
    if (problems.length) result.error = [result.error, `cleanup: ${problems.join('; ')}`].filter(Boolean).join('\n');
  }
}
