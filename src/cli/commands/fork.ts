import type { Command } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { forkChildren } from '../../fork/index.js';
import { forkOnHost, remoteHostOfTemplate } from '../../host-agent/index.js';
import type { VmDeps } from '../../vm/index.js';
import { action } from '../action.js';
import { runDetached } from '../background.js';
import { positiveInt } from '../parse.js';
import { printJson, printTable } from '../output.js';

export function registerForkCommands(program: Command): void {
  program
    .command('fork <template>')
    .description('fork running children from a template: copy-on-write RAM, a qcow2 overlay each, own identity, no boot; its warm QEMUs are taken first (refilled in the background)')
    .option('--count <n>', 'how many children', '1')
    .option('--name <pattern>', 'child names; {n} becomes a number continuing after existing children (default <template>-{n})')
    .option('--network <name>', 'network the children join (default: the default network, created on first use)')
    .option('--concurrency <n>', 'children forked at once (default: number of CPUs)')
    .option('--wait-kicks', 'agent path: also wait for the service kicks after ready (journald restart, sshd start queued) and check them')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, template: string, opts: { count: string; name?: string; network?: string; concurrency?: string; waitKicks?: boolean; json?: boolean }) => {
        const deps = await ctx.deps();
        const count = positiveInt(opts.count, '--count');
        // a template on another host of the fleet: its children fork there, by its agent
        const host = await remoteHostOfTemplate(deps, template);
        if (host) return forkThere(deps, host, template, count, opts);
        const bar = !opts.json && process.stderr.isTTY ? new SingleBar({ format: 'forking [{bar}] {value}/{total} {last}', stream: process.stderr }, Presets.shades_classic) : undefined;
        bar?.start(count, 0, { last: '' });
        const result = await forkChildren(deps, {
          template,
          count,
          ...(opts.name ? { namePattern: opts.name } : {}),
          ...(opts.network ? { network: opts.network } : {}),
          ...(opts.concurrency ? { concurrency: positiveInt(opts.concurrency, '--concurrency') } : {}),
          // a child is handed out at ready: journald's restart and sshd's start finish in the guest meanwhile
          awaitKicks: Boolean(opts.waitKicks),
          onChild: (c) => bar?.increment({ last: c.name }),
        }).finally(() => bar?.stop());
        // the warm processes taken are replaced by a detached `vmfork template warm`: this command does not wait
        if (result.warmTaken > 0) runDetached(ctx.home.root, ['template', 'warm', template]);
        if (opts.json) {
          printJson(result);
        } else {
          printTable(
            result.children.map((c) => ({
              name: c.name,
              ip: c.ip,
              mac: c.mac,
              machineId: c.identity.machineId,
              path: c.forkPath,
              warm: c.fromWarm ? 'yes' : 'no',
              runningMs: c.timings.runningMs,
              readyMs: c.timings.readyMs,
            })),
            ['name', 'ip', 'mac', 'machineId', 'path', 'warm', 'runningMs', 'readyMs'],
          );
          process.stdout.write(`${result.children.length} forked in ${(result.wallMs / 1000).toFixed(2)} s on network ${result.network}\n`);
          for (const f of result.failed) process.stderr.write(`error ${f.error.code}: ${f.error.message}\n`);
        }
        return result.failed.length ? 1 : 0;
      }),
    );
}

async function forkThere(deps: VmDeps, host: string, template: string, count: number, opts: { name?: string; network?: string; waitKicks?: boolean; json?: boolean }): Promise<number> {
  const r = await forkOnHost(deps, host, { template, count, namePattern: opts.name, network: opts.network, awaitKicks: opts.waitKicks });
  if (opts.json) {
    printJson(r);
  } else {
    printTable(
      r.children.map((c) => ({ name: c.name, host, ip: c.ip, mac: c.mac, machineId: c.identity.machineId, path: c.forkPath, runningMs: c.timings.runningMs, readyMs: c.timings.readyMs })),
      ['name', 'host', 'ip', 'mac', 'machineId', 'path', 'runningMs', 'readyMs'],
    );
    process.stdout.write(`${r.children.length} forked on host ${host} in ${(r.wallMs / 1000).toFixed(2)} s on network ${r.network}${r.already.length ? ` (${r.already.length} already forked)` : ''}\n`);
    for (const f of r.failed) process.stderr.write(`error ${f.error.code}: ${f.error.message}\n`);
  }
  return r.failed.length ? 1 : 0;
}
