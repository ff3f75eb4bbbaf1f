import type { Command } from 'commander';
import { parseAccelChoice } from '../../host/index.js';
import { warmTemplate } from '../../fork/index.js';
import { createTemplate, createTemplateFromVm, listTemplates, removeTemplate, showTemplate, verifyTemplate } from '../../template/index.js';
import { VmforkError } from '../../errors.js';
import { formatBytes } from '../../util/index.js';
import { action } from '../action.js';
import { positiveInt } from '../parse.js';
import { printJson, printTable } from '../output.js';
import { accelOption } from './vm.js';
import { remoteHostOfTemplate, sendHostJob } from '../../host-agent/index.js';

export function registerTemplateCommands(program: Command): void {
  const tpl = program.command('template').description('templates ("forked state"): a parent VM booted once, prepared and frozen; children fork from it');

  tpl
    .command('create <name>')
    .description('boot a parent from a linked clone of the image with file-backed shared RAM, prepare it, and freeze it (on vmfork-guest\'s request when the image carries it); or, with --from-vm, freeze a running child\'s exact state as a new template (the child keeps running)')
    .option('--image <name>', 'image to boot (see: vmfork image list)')
    .option('--from-vm <child>', 'a running forked child: its state (files, processes) becomes the template\'s; the template stands on the child\'s template')
    .option('--memory <size>', 'guest RAM, e.g. 512M', '512M')
    .option('--cpus <n>', 'virtual CPUs', '1')
    .option('--network <name>', 'network whose bridge the parent NIC sits on while it boots (no address is configured)', 'default')
    .addOption(accelOption())
    .option('--screen', 'give it (and so every child of it) a VGA screen, served over VNC to the web console (docs/console.md)')
    .option('--host <name>', "make it on this host of the fleet: its agent boots, prepares and freezes it there, and children of it fork there (needs the fleet's --db)")
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, name: string, opts: { image?: string; fromVm?: string; memory: string; cpus: string; network: string; accel: string; screen?: boolean; host?: string; json?: boolean }) => {
        const deps = await ctx.deps();
        if ((opts.image === undefined) === (opts.fromVm === undefined)) {
          throw new VmforkError('VMFORK_INVALID_ARGUMENT', 'give exactly one of --image (boot an image) and --from-vm (freeze a running child)');
        }
        if (opts.host !== undefined) {
          if (opts.image === undefined) throw new VmforkError('VMFORK_INVALID_ARGUMENT', '--host makes a template from --image (--from-vm freezes a child where it runs)', { details: { field: 'host' } });
          process.stderr.write(`creating template ${name} on host ${opts.host}: cold boot of ${opts.image}, prepare, freeze…
`);
          const job = { op: 'template-create' as const, name, image: opts.image, memory: opts.memory, cpus: positiveInt(opts.cpus, '--cpus'), network: opts.network, accel: parseAccelChoice(opts.accel), ...(opts.screen ? { screen: true } : {}) };
          const r = await sendHostJob(deps, opts.host, job);
          if (opts.json) return printJson(r);
          process.stdout.write(`template ${name}: ready on host ${opts.host}${typeof r.coldBootSeconds === 'number' ? ` (cold boot ${r.coldBootSeconds.toFixed(1)} s, cut ${String(r.cutMs)} ms)` : ''}
`);
          return;
        }
        let record;
        if (opts.fromVm !== undefined) {
          process.stderr.write(`creating template ${name} from VM ${opts.fromVm}: move its state, prepare, freeze…\n`);
          record = await createTemplateFromVm(deps, { name, vm: opts.fromVm });
        } else {
          process.stderr.write(`creating template ${name}: cold boot of ${opts.image}, prepare, freeze…\n`);
          record = await createTemplate(deps, {
            name,
            image: opts.image as string,
            memory: opts.memory,
            cpus: positiveInt(opts.cpus, '--cpus'),
            network: opts.network,
            accel: parseAccelChoice(opts.accel),
            ...(opts.screen ? { screen: true } : {}),
          });
        }
        const { agent: _agent, ...shown } = record;
        if (opts.json) return printJson({ name, state: 'ready', ...shown });
        const origin = record.fromVm
          ? `from VM ${record.fromVm.vm} of template ${record.fromVm.template} (it stood still ${record.fromVm.pausedMs} ms), cut ${record.cutMs} ms`
          : `cold boot ${record.coldBootSeconds.toFixed(1)} s, cut ${record.cutMs} ms`;
        process.stdout.write(
          `template ${name}: ready (${origin}, ${record.accel}; ${record.forkPath} path)\n` +
            `  RAM   ${record.files.ram.path} (${formatBytes(record.files.ram.size)})\n` +
            `  state ${record.files.state.path} (${formatBytes(record.files.state.size)})\n` +
            `  disk  ${record.files.disk.path}\n  boot_id ${record.bootId}\n`,
        );
      }),
    );

  tpl
    .command('list')
    .description('list templates')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, opts: { json?: boolean }) => {
        const rows = await listTemplates(await ctx.deps());
        if (opts.json) return printJson(rows.map(({ record: _record, ...rest }) => rest));
        printTable(rows, ['name', 'state', 'image', 'host', 'parent', 'forkPath', 'children', 'warm', 'memoryMiB', 'accel', 'coldBootSeconds']);
      }),
    );

  tpl
    .command('show <name>')
    .description('show a template: its fork path (agent: vmfork-guest, or script), warm processes, and everything its children depend on (QEMU build, machine, files + sha256)')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, name: string, opts: { json?: boolean }) => {
        const view = await showTemplate(await ctx.deps(), name);
        if (opts.json) return printJson(view);
        process.stdout.write(`${JSON.stringify(view, null, 2)}\n`);
      }),
    );

  tpl
    .command('warm <name>')
    .description('keep K QEMU processes waiting at -incoming defer for the template (MAC, vmgenid, uuid, address, tap, overlays assigned): a fork takes one and only loads the state and continues; forks refill in the background')
    .option('--count <k>', 'how many to keep (0 removes them); without it: refill to the recorded number')
    .option('--network <name>', 'network the warm processes hold addresses on (a fork takes those of its own network)', 'default')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, name: string, opts: { count?: string; network: string; json?: boolean }) => {
        const count = opts.count === undefined ? undefined : Number(opts.count);
        const result = await warmTemplate(await ctx.deps(), name, { ...(count !== undefined ? { count } : {}), network: opts.network });
        if (opts.json) printJson(result);
        else {
          process.stdout.write(`template ${name}: ${result.warm.length} of ${result.target} warm (${result.launched.length} launched, ${result.removed.length} removed)\n`);
          for (const f of result.failed) process.stderr.write(`error ${f.error.code}: ${f.name}: ${f.error.message}\n`);
        }
        return result.failed.length ? 1 : 0;
      }),
    );

  tpl
    .command('verify <name>')
    .description('re-hash the template files (RAM, device state, disk) against their recorded sha256')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, name: string, opts: { json?: boolean }) => {
        const deps = await ctx.deps();
        const files = await verifyTemplate(deps, name);
        const ok = files.every((f) => f.ok);
        if (opts.json) printJson({ name, ok, files });
        else printTable(files.map((f) => ({ ...f, ok: f.ok ? 'ok' : 'CHANGED' })), ['role', 'ok', 'path', 'problem']);
        return ok ? 0 : 1;
      }),
    );

  tpl
    .command('rm <name>')
    .description('remove a template, its warm processes and its files (refused while children use it or templates stand on it)')
    .option('--force', 'also remove a template whose creation was interrupted (kills its parent QEMU)')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, name: string, opts: { force?: boolean; json?: boolean }) => {
        const deps = await ctx.deps();
        const host = await remoteHostOfTemplate(deps, name);
        if (host) await sendHostJob(deps, host, { op: 'template-rm', name });
        else await removeTemplate(deps, name, { force: Boolean(opts.force) });
        if (opts.json) return printJson({ name, removed: true });
        process.stdout.write(`template ${name}: removed\n`);
      }),
    );
}
