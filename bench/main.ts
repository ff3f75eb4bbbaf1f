/**
 * Benchmark entry: `node dist/bench/main.js <benchmark> [options]` (via `npm run bench -- fork …`, which builds
 * first). Writes bench/results/<benchmark>-<YYYY-MM-DD>[-failed].json and .md, prints the markdown to stdout; progress
 * goes to stderr so stdout stays the report.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseForkArgs, UsageError, USAGE } from './bench-args.js';
import { runForkBench } from './fork-bench.js';
import { renderForkMarkdown } from './fork-report.js';
import { parseProvisionArgs, PROVISION_USAGE } from './provision-args.js';
import { runProvisionBench } from './provision-bench.js';
import { renderProvisionMarkdown } from './provision-report.js';

// dist/bench/main.js → <repo>/bench/results: results are committed next to the bench sources, not under dist/
const DEFAULT_OUT = resolve(import.meta.dirname, '..', '..', 'bench', 'results');

function progress(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

async function main(argv: readonly string[]): Promise<number> {
  const [benchmark, ...rest] = argv;
  if (benchmark === 'provision') return provision(rest);
  if (benchmark !== 'fork') {
    process.stderr.write(`${benchmark ? `unknown benchmark "${benchmark}"\n` : ''}${USAGE}\n`);
    return 2;
  }
  let opts;
  try {
    opts = parseForkArgs(rest, DEFAULT_OUT);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n${USAGE}\n`);
    return 2;
  }
  const result = await runForkBench(opts, progress);
  // a failed run never overwrites the day's good result
  const base = join(opts.outDir, `fork-${result.startedAt.slice(0, 10)}${result.error ? '-failed' : ''}`);
  const markdown = renderForkMarkdown(result);
  await mkdir(opts.outDir, { recursive: true });
  await writeFile(`${base}.json`, `${JSON.stringify(result, null, 2)}\n`);
  await writeFile(`${base}.md`, markdown);
  progress(`wrote ${base}.json and ${base}.md`);
  process.stdout.write(markdown);
  return result.error ? 1 : 0;
}

/** `npm run bench -- provision`: the traditional path and vmfork's, side by side, for one pool. */
async function provision(argv: readonly string[]): Promise<number> {
  let opts;
  try {
    opts = parseProvisionArgs(argv, DEFAULT_OUT);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${PROVISION_USAGE}\n`);
    return 2;
  }
  const result = await runProvisionBench(opts, progress);
  const base = join(opts.outDir, `provision-${result.startedAt.slice(0, 10)}${result.error ? '-failed' : ''}`);
  const markdown = renderProvisionMarkdown(result);
  await mkdir(opts.outDir, { recursive: true });
  await writeFile(`${base}.json`, `${JSON.stringify(result, null, 2)}\n`);
  await writeFile(`${base}.md`, markdown);
  progress(`wrote ${base}.json and ${base}.md`);
  process.stdout.write(markdown);
  return result.error ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
