import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { VmforkError } from '../src/errors.js';
import { warmTemplate } from '../src/fork/index.js';
import { showTemplate } from '../src/template/index.js';
import { run } from '../src/util/index.js';
import { destroyVm, type VmDeps } from '../src/vm/index.js';
import type { CliSample, CliStartSample } from './fork-result.js';
import type { Progress } from './fork-phases.js';

/** dist/bench/ → the shipped binary (the esbuild bundle) and the plain compiled tree it is made from. */
const BUNDLED = join(import.meta.dirname, '..', 'cli', 'main.js');
const UNBUNDLED = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');

async function wallOf(args: string[]): Promise<{ ms: number; stdout: string }> {
  const t0 = performance.now();
  const r = await run(process.execPath, args, { timeoutMs: 300_000 });
  return { ms: Math.round(performance.now() - t0), stdout: r.stdout };
}

/** Node alone, and `vmfork fork --help` (node + loading the fork command's modules), bundled and not. */
export async function measureCliStart(runs: number): Promise<CliStartSample> {
  const out: CliStartSample = { nodeMs: [], bundledHelpMs: [], unbundledHelpMs: [] };
  for (let i = 0; i < runs; i++) {
    out.nodeMs.push((await wallOf(['-e', '0'])).ms);
    out.bundledHelpMs.push((await wallOf([BUNDLED, 'fork', '--help'])).ms);
    out.unbundledHelpMs.push((await wallOf([UNBUNDLED, 'fork', '--help'])).ms);
  }
  return out;
}

interface ForkJson {
  children: { name: string; fromWarm: boolean; timings: { readyMs: number } }[];
  failed: { error: { message: string } }[];
}

async function warmCount(deps: VmDeps, template: string): Promise<number> {
  return Number((await showTemplate(deps, template)).warm);
}

/**
 * `vmfork fork T --count 1` of the bundled binary, timed from the outside as a user would, `runs` times without a
 * warm process and `runs` times with one waiting. After a warm call the detached refill is waited for, so it never
 * competes with the next call; each child is destroyed before the next call.
 */
export async function measureCli(deps: VmDeps, template: string, runs: number, progress: Progress): Promise<CliSample[]> {
  const out: CliSample[] = [];
  for (const mode of ['cold', 'warm'] as const) {
    await warmTemplate(deps, template, { count: mode === 'warm' ? 1 : 0 });
    for (let i = 1; i <= runs; i++) {
      await sleep(2_000); // let the last child's kicks and the host settle
      const call = await wallOf([BUNDLED, '--home', deps.home.root, 'fork', template, '--count', '1', '--name', `cli-${mode}-${i}`, '--json']);
      const r = JSON.parse(call.stdout) as ForkJson;
      const child = r.children[0];
      if (!child) throw new VmforkError('VMFORK_FORK_FAILED', `vmfork fork failed: ${r.failed[0]?.error.message ?? call.stdout}`);
      out.push({ mode, wallMs: call.ms, readyMs: Math.round(child.timings.readyMs), fromWarm: child.fromWarm });
      progress(`CLI fork (${mode}): ${call.ms} ms wall, child ready ${Math.round(child.timings.readyMs)} ms${child.fromWarm ? ', from a warm process' : ''}`);
      if (mode === 'warm') {
        const deadline = Date.now() + 120_000;
        while ((await warmCount(deps, template)) < 1 && Date.now() < deadline) await sleep(250);
      }
      await destroyVm(deps, child.name);
    }
  }
  await warmTemplate(deps, template, { count: 0 });
  return out;
}
