/**
 * Benchmark entry: `node dist/bench/main.js <benchmark> [options]` (via `npm run bench -- fork …`, which builds
 * first). Writes bench/results/<benchmark>-<YYYY-MM-DD>[-failed].json and .md, prints the markdown to stdout; progress
 * goes to stderr so stdout stays the report.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseForkArgs, UsageError, USAGE } from './bench-args.js';
import { runForkBench } from './fork-bench.js';
import { LIFECYCLE_USAGE, parseLifecycleArgs } from './lifecycle-args.js';
import { renderLifecycleMarkdown, runLifecycleBench } from './lifecycle-bench.js';
import { renderForkMarkdown } from './fork-report.js';
import { parseProvisionArgs, PROVISION_USAGE } from './provision-args.js';
import { runProvisionBench } from './provision-bench.js';
import { renderProvisionMarkdown } from './provision-report.js';
import { parseScaleArgs, SCALE_USAGE } from './scale-args.js';
import { runScaleBench } from './scale-bench.js';
import { renderScaleMarkdown } from './scale-report.js';
import { HOSTS_USAGE, parseHostsArgs } from './hosts-args.js';
import { runHostsBench } from './hosts-bench.js';
import { renderHostsMarkdown } from './hosts-report.js';
import { LAZY_USAGE, parseLazyArgs } from './lazy-args.js';
import { renderLazyMarkdown, runLazyBench } from './lazy-bench.js';

// dist/bench/main.js → <repo>/bench/results: results are committed next to the bench sources, not under dist/
const DEFAULT_OUT = resolve(import.meta.dirname, '..', '..', 'bench', 'results');

function progress(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

/** One benchmark: its usage, its argument parser, its run and its markdown. */
interface Benchmark<O extends { outDir: string }, R extends { startedAt: string; error?: string }> {
  usage: string;
  parse(argv: readonly string[], defaultOut: string): O;
  run(opts: O, progress: (message: string) => void): Promise<R>;
  render(result: R): string;
}

const BENCHMARKS = {
  fork: { usage: USAGE, parse: parseForkArgs, run: runForkBench, render: renderForkMarkdown },
  provision: { usage: PROVISION_USAGE, parse: parseProvisionArgs, run: runProvisionBench, render: renderProvisionMarkdown },
  lifecycle: { usage: LIFECYCLE_USAGE, parse: parseLifecycleArgs, run: runLifecycleBench, render: renderLifecycleMarkdown },
  scale: { usage: SCALE_USAGE, parse: parseScaleArgs, run: runScaleBench, render: renderScaleMarkdown },
  hosts: { usage: HOSTS_USAGE, parse: parseHostsArgs, run: runHostsBench, render: renderHostsMarkdown },
  lazy: { usage: LAZY_USAGE, parse: parseLazyArgs, run: runLazyBench, render: renderLazyMarkdown },
} as const;

async function runBenchmark<O extends { outDir: string }, R extends { startedAt: string; error?: string }>(name: string, b: Benchmark<O, R>, argv: readonly string[]): Promise<number> {
  let opts: O;
  try {
    opts = b.parse(argv, DEFAULT_OUT);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n${b.usage}\n`);
    return 2;
  }
  const result = await b.run(opts, progress);
  // a failed run never overwrites the day's good result
  const base = join(opts.outDir, `${name}-${result.startedAt.slice(0, 10)}${result.error ? '-failed' : ''}`);
  const markdown = b.render(result);
  await mkdir(opts.outDir, { recursive: true });
  await writeFile(`${base}.json`, `${JSON.stringify(result, null, 2)}\n`);
  await writeFile(`${base}.md`, markdown);
  progress(`wrote ${base}.json and ${base}.md`);
  process.stdout.write(markdown);
  return result.error ? 1 : 0;
}

async function main(argv: readonly string[]): Promise<number> {
  const [benchmark, ...rest] = argv;
  if (benchmark === 'fork') return runBenchmark(benchmark, BENCHMARKS.fork, rest);
  // `provision`: the traditional path and vmfork's, side by side, for one pool
  if (benchmark === 'provision') return runBenchmark(benchmark, BENCHMARKS.provision, rest);
  // `lifecycle`: claim, release and refresh, claims that fork, an image push (issue 12)
  if (benchmark === 'lifecycle') return runBenchmark(benchmark, BENCHMARKS.lifecycle, rest);
  // `scale`: one pool grown to 100 children, idle CPU, memory and API latency at each size (issue 13)
  if (benchmark === 'scale') return runBenchmark(benchmark, BENCHMARKS.scale, rest);
  // `hosts`: a pool on one test host, then spread over three (issue 14)
  if (benchmark === 'hosts') return runBenchmark(benchmark, BENCHMARKS.hosts, rest);
  // `lazy`: a new host's first child with the replica copied first, and lazily (issue 14 item 8)
  if (benchmark === 'lazy') return runBenchmark(benchmark, BENCHMARKS.lazy, rest);
  process.stderr.write(`${benchmark ? `unknown benchmark "${benchmark}"\n` : ''}${USAGE}\n`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
