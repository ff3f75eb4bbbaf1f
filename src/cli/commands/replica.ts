import type { Command } from 'commander';
import type { ReplicaView } from '../../replica/index.js';
import { action } from '../action.js';
import { apiClient } from '../client.js';
import { printJson, printTable } from '../output.js';

export function registerReplicaCommands(program: Command): void {
  const replica = program.command('replica').description('the replica map: one replica per image version + phase-1 spec + host + datastore');
  replica
    .command('list')
    .alias('ls')
    .description('list replicas and the pools using them (a used replica is protected)')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, opts: { json?: boolean }) => {
        const replicas = await apiClient(ctx.home).request<ReplicaView[]>('GET', '/v1/replicas');
        if (opts.json) return printJson(replicas);
        if (replicas.length === 0) return void process.stdout.write('no replicas\n');
        printTable(
          replicas.map((r) => ({ id: r.id, state: r.state, image: `${r.image}@${r.imageVersion.slice(0, 12)}`, digest: r.phase1Digest.slice(0, 12), host: r.hostId, datastore: r.datastore, pools: r.pools.join(',') || '-' })),
          ['id', 'state', 'image', 'digest', 'host', 'datastore', 'pools'],
        );
      }),
    );
  replica
    .command('rm <id>')
    .description('remove a replica no pool uses, with its templates and files (a used replica is refused)')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, id: string, opts: { json?: boolean }) => {
        const r = await apiClient(ctx.home).request<{ id: string; templates: string[] }>('DELETE', `/v1/replicas/${encodeURIComponent(id)}`);
        if (opts.json) return printJson(r);
        process.stdout.write(`replica ${r.id}: removed${r.templates.length ? ` with template(s) ${r.templates.join(', ')}` : ''}\n`);
      }),
    );
}
