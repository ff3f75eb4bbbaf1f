import type { Command } from 'commander';
import { TABLE_COLUMNS, summaryLines, tableRows, verifyChildren } from '../../verify/index.js';
import { collectOnHostFor } from '../../host-agent/index.js';
import { action } from '../action.js';
import { positiveInt } from '../parse.js';
import { printJson, printTable } from '../output.js';

export function registerVerifyCommands(program: Command): void {
  program
    .command('verify [names...]')
    .description('prove forked children are distinct machines: every value read from the guest, QEMU, or a real client (ping, ssh-keyscan)')
    .option('--template <name>', 'verify every child of this template')
    .option('--concurrency <n>', 'children checked at once', '4')
    .option('--max-clock-offset <ms>', 'guest clock offset above which a child is reported', '2000')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, names: string[], opts: { template?: string; concurrency: string; maxClockOffset: string; json?: boolean }) => {
        const deps = await ctx.deps();
        const collectOnHost = collectOnHostFor(deps);
        const report = await verifyChildren(deps, {
          ...(collectOnHost ? { collectOnHost } : {}),
          ...(opts.template ? { template: opts.template } : {}),
          names,
          concurrency: positiveInt(opts.concurrency, '--concurrency'),
          maxClockOffsetMs: positiveInt(opts.maxClockOffset, '--max-clock-offset'),
        });
        if (opts.json) {
          printJson(report);
        } else {
          if (report.children.length) printTable(tableRows(report), [...TABLE_COLUMNS]);
          process.stdout.write(`${summaryLines(report).join('\n')}\n`);
        }
        // a collision or a problem is a failed verification, whatever the output format
        return report.ok ? 0 : 1;
      }),
    );
}
