import type { Command } from 'commander';
import { parseAccelChoice } from '../../host/accel.js';
import { bootVm } from '../../vm/boot.js';
import { destroyVm } from '../../vm/lifecycle.js';
import { action } from '../action.js';
import { printJson } from '../output.js';
import { accelOption } from './vm.js';

/** `vmfork demo`: what `npm start` runs after the image build. */
export function registerDemoCommands(program: Command): void {
  program
    .command('demo')
    .description('cold-boot a VM from the default image, print its identity and time to ready, then destroy it (unless --keep)')
    .option('--image <name>', 'image to boot', 'default')
    .option('--keep', 'leave the VM running')
    .addOption(accelOption())
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, opts: { image: string; keep?: boolean; accel: string; json?: boolean }) => {
        const deps = { db: await ctx.db(), home: ctx.home, log: ctx.log };
        const r = await bootVm(deps, { image: opts.image, accel: parseAccelChoice(opts.accel) });
        if (!opts.keep) await destroyVm(deps, r.name);
        if (opts.json) return printJson({ coldBoot: r, kept: Boolean(opts.keep) });
        process.stdout.write(
          `Cold boot of image "${opts.image}" (${r.accel}: ${r.accelReason})\n` +
            `  VM          ${r.name}${opts.keep ? ' (kept running: vmfork vm destroy ' + r.name + ')' : ' (destroyed)'}\n` +
            `  hostname    ${r.hostname}\n  boot_id     ${r.bootId}\n  time to agent ${r.secondsToAgent.toFixed(1)} s\n`,
        );
      }),
    );
}
