import { Option, type Command } from 'commander';
import { ACCEL_CHOICES, parseAccelChoice, runDoctor, type DoctorReport } from '../../host/index.js';
import { listImages } from '../../image/index.js';
import { action } from '../action.js';
import { printJson } from '../output.js';

export function registerDoctorCommands(program: Command): void {
  program
    .command('doctor')
    .description('check that this host can run vmfork: QEMU, accelerator, free space, networking, guest image')
    .addOption(new Option('--accel <accel>', 'accelerator policy to check').choices([...ACCEL_CHOICES]).default('auto'))
    .option('--json', 'print the report as JSON')
    .action(
      action(async (ctx, opts: { accel: string; json?: boolean }) => {
        const report = await runDoctor({ home: ctx.home, images: async () => listImages(await ctx.db()), accel: parseAccelChoice(opts.accel) });
        ctx.log.info({ doctor: report }, 'doctor');
        if (opts.json) printJson(report);
        else process.stdout.write(formatReport(report));
        return report.ok ? 0 : 1;
      }),
    );
}

/** One line per check (`ok` / `FAIL` / `warn` for an optional one), then what to do for each failure. */
export function formatReport(report: DoctorReport): string {
  const width = Math.max(...report.checks.map((c) => c.name.length));
  const lines = report.checks.map((c) => `${(c.ok ? 'ok' : c.required ? 'FAIL' : 'warn').padEnd(4)}  ${c.name.padEnd(width)}  ${c.detail}`);
  const fixes = report.checks.filter((c) => !c.ok && c.fix).map((c) => `  ${c.name}: ${c.fix}`);
  if (fixes.length) lines.push('', 'to do:', ...fixes);
  lines.push('', report.ok ? 'vmfork can run on this host' : 'vmfork cannot run on this host until the FAIL lines are fixed');
  return `${lines.join('\n')}\n`;
}
