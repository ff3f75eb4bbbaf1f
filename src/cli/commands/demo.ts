import type { Command } from 'commander';
import { forkChildren } from '../../fork/index.js';
import { createTemplate, removeTemplate, showTemplate, type TemplateRecord } from '../../template/index.js';
import { percentile } from '../../util/index.js';
import { verifyChildren } from '../../verify/index.js';
import { destroyVm, type VmDeps } from '../../vm/index.js';
import { action } from '../action.js';
import { positiveInt } from '../parse.js';
import { printJson, printTable } from '../output.js';

/** The template the demo forks from: reused when ready, recreated when a previous attempt failed. */
async function demoTemplate(deps: VmDeps, name: string, image: string): Promise<{ record: TemplateRecord; created: boolean }> {
  const existing = await showTemplate(deps, name).catch(() => undefined);
  if (existing?.state === 'ready' && existing.record) return { record: existing.record as TemplateRecord, created: false };
  if (existing) await removeTemplate(deps, name);
  process.stderr.write(`creating template "${name}" from image "${image}" (one cold boot, then frozen)…\n`);
  return { record: await createTemplate(deps, { name, image }), created: true };
}

/** `vmfork demo`: what `npm start` runs after the image build. */
export function registerDemoCommands(program: Command): void {
  program
    .command('demo')
    .description('fork children from the default template (created if missing), verify them, and compare with the template\'s cold boot')
    .option('--image <name>', 'image of the template', 'default')
    .option('--template <name>', 'template to fork from (created if missing)', 'default')
    .option('--count <n>', 'children to fork', '5')
    .option('--keep', 'leave the children running (default: destroy them at the end)')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, opts: { image: string; template: string; count: string; keep?: boolean; json?: boolean }) => {
        const deps = await ctx.deps();
        const { record } = await demoTemplate(deps, opts.template, opts.image);
        process.stderr.write(`forking ${opts.count} children…\n`);
        const batch = await forkChildren(deps, { template: opts.template, count: positiveInt(opts.count, '--count'), namePattern: 'demo-{n}' });
        try {
          const report = await verifyChildren(deps, { names: batch.children.map((c) => c.name) });
          const ready = new Map(batch.children.map((c) => [c.name, c.timings.readyMs / 1000]));
          const rows = report.children.map((c) => ({
            name: c.name,
            ip: c.ipv4,
            mac: c.mac,
            machineId: c.machineId,
            secondsToReady: ready.get(c.name),
            reboots: c.reboots ?? 'unknown',
          }));
          const readyMs = batch.children.map((c) => c.timings.readyMs);
          const summary = {
            templateColdBootSeconds: record.coldBootSeconds,
            forkWallSeconds: batch.wallMs / 1000,
            childReadyP50Seconds: (percentile(readyMs, 50) ?? 0) / 1000,
            children: batch.children.length,
            failed: batch.failed,
            collisions: report.collisions,
            problems: report.problems,
          };
          if (opts.json) {
            printJson({ ...summary, rows });
          } else {
            printTable(rows, ['name', 'ip', 'mac', 'machineId', 'secondsToReady', 'reboots']);
            process.stdout.write(
              `\ncold boot of the template: ${record.coldBootSeconds.toFixed(1)} s (${record.accel})\n` +
                `fork of ${batch.children.length} children:     ${summary.forkWallSeconds.toFixed(2)} s in all, ` +
                `${summary.childReadyP50Seconds.toFixed(2)} s to ready per child (p50), 0 boots\n` +
                `verify: ${report.collisions.length} collision(s), ${report.problems.length} problem(s)\n`,
            );
            for (const f of batch.failed) process.stderr.write(`error ${f.error.code}: ${f.error.message}\n`);
          }
          return report.ok && batch.failed.length === 0 ? 0 : 1;
        } finally {
          if (!opts.keep) for (const c of batch.children) await destroyVm(deps, c.name);
          else process.stderr.write(`children kept running: ${batch.children.map((c) => c.name).join(', ')} (vmfork vm destroy NAME)\n`);
        }
      }),
    );
}
