import type { Command } from 'commander';
import { runGc } from '../../gc/index.js';
import { action } from '../action.js';
import { printJson, printTable } from '../output.js';

export function registerGcCommands(program: Command): void {
  program
    .command('gc')
    .description('find what crashes left in this data dir (QEMU processes, directories, sockets, taps, namespaces, leases, records, unreferenced replicas) and remove it (docs/gc.md)')
    .option('--dry-run', 'list what would be removed, change nothing')
    .option('--json', 'print JSON: { dryRun, actions: [{ kind, target, reason, done }] }')
    .action(
      action(async (ctx, opts: { dryRun?: boolean; json?: boolean }) => {
        const report = await runGc(await ctx.deps(), { dryRun: opts.dryRun === true });
        const failed = report.actions.some((a) => a.error !== undefined);
        if (opts.json) {
          printJson(report);
          return failed ? 1 : 0;
        }
        if (report.actions.length === 0) {
          process.stdout.write('nothing left over\n');
          return 0;
        }
        const status = (a: (typeof report.actions)[number]): string => (report.dryRun ? 'would do' : a.done ? 'done' : a.error ? `failed: ${a.error}` : `skipped: ${a.skipped ?? ''}`);
        printTable(report.actions.map((a) => ({ kind: a.kind, target: a.target, reason: a.reason, status: status(a) })), ['kind', 'target', 'reason', 'status']);
        return failed ? 1 : 0;
      }),
    );
}
