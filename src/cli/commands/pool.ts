import type { Command } from 'commander';
import type { PoolDetail, PoolSummary } from '../../pool/index.js';
import type { TaskAccepted } from '../../task/index.js';
import { action } from '../action.js';
import { apiClient } from '../client.js';
import { printJson, printTable } from '../output.js';
import { positiveInt } from '../parse.js';
import { addClaimCommands, addUpdateCommand, readSpecFile } from './pool-life.js';
import { reportAccepted } from './task.js';

interface WaitOpts {
  wait?: boolean;
  json?: boolean;
}

const counts = (c: Record<string, number>): string => Object.entries(c).map(([state, n]) => `${n} ${state}`).join(', ') || '-';

export function registerPoolCommands(program: Command): void {
  const pool = program.command('pool').description('pools of desktops provisioned by the server (vmfork serve): create, list, show, resize, update, rm, claim, claims (docs/api.md, docs/lifecycle.md)');

  pool
    .command('create')
    .description('create a pool from a spec file (YAML or JSON); the server checks it and answers with a task')
    .requiredOption('-f, --file <path>', 'the pool spec (see docs/api.md for its fields)')
    .option('--wait', 'follow the task until the pool is ready (progress per child); non-zero exit if it fails')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, opts: WaitOpts & { file: string }) => {
        const text = await readSpecFile(opts.file);
        const client = apiClient(ctx.home);
        const accepted = await client.request<TaskAccepted>('POST', '/v1/pools', { yaml: text });
        return reportAccepted(client, accepted, `pool ${accepted.pool ?? ''}`.trim(), opts);
      }),
    );

  addClaimCommands(pool);
  addUpdateCommand(pool);

  pool
    .command('list')
    .alias('ls')
    .description('list pools with their children counted per state')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, opts: { json?: boolean }) => {
        const pools = await apiClient(ctx.home).request<PoolSummary[]>('GET', '/v1/pools');
        if (opts.json) return printJson(pools);
        if (pools.length === 0) return void process.stdout.write('no pools (vmfork pool create -f pool.yaml)\n');
        printTable(
          pools.map((p) => ({ name: p.name, state: p.state, image: p.image, provisioning: p.provisioning, persistent: p.persistent ? 'yes' : 'no', max: p.size.max, children: counts(p.counts) })),
          ['name', 'state', 'image', 'provisioning', 'persistent', 'max', 'children'],
        );
      }),
    );

  pool
    .command('show <name>')
    .description('show a pool: its spec, children and replica')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, name: string, opts: { json?: boolean }) => {
        const p = await apiClient(ctx.home).request<PoolDetail>('GET', `/v1/pools/${encodeURIComponent(name)}`);
        if (opts.json) return printJson(p);
        const lines = [
          `name:         ${p.name}`,
          `state:        ${p.state}`,
          `image:        ${p.image}`,
          `provisioning: ${p.provisioning}${p.persistent ? ', persistent' : ''}`,
          `size:         max ${p.size.max}, min ${p.size.min}, spares ${p.size.spares}`,
          `datastore:    ${p.datastore} on host ${p.hostId}`,
          `replica:      ${p.replica ?? '-'}`,
          `children:     ${counts(p.counts)}`,
          `hosts:        ${Object.entries(p.hosts).map(([h, n]) => `${h} ${n}`).join(', ') || '-'}`,
          `last task:    ${p.lastTaskId ?? '-'}`,
          '',
        ];
        process.stdout.write(lines.join('\n'));
        if (p.vms.length) printTable(p.vms, ['name', 'state', 'host']);
      }),
    );

  pool
    .command('resize <name>')
    .description('grow or shrink a pool to --max children (a task)')
    .requiredOption('--max <n>', 'the new number of children')
    .option('--wait', 'follow the task until it ends')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, name: string, opts: WaitOpts & { max: string }) => {
        const client = apiClient(ctx.home);
        const accepted = await client.request<TaskAccepted>('PATCH', `/v1/pools/${encodeURIComponent(name)}`, { json: { max: positiveInt(opts.max, '--max') } });
        return reportAccepted(client, accepted, `pool ${name}`, opts);
      }),
    );

  pool
    .command('rm <name>')
    .description('remove a pool and its children (a task); its replica stays for the next pool with the same spec')
    .option('--wait', 'follow the task until it ends')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, name: string, opts: WaitOpts) => {
        const client = apiClient(ctx.home);
        const accepted = await client.request<TaskAccepted>('DELETE', `/v1/pools/${encodeURIComponent(name)}`);
        return reportAccepted(client, accepted, `pool ${name}`, opts);
      }),
    );
}
