import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { sendHostJob } from '../../host-agent/index.js';
import { parsePoolSpecText } from '../../pool/index.js';
import type { ReplicaView } from '../../replica/index.js';
import { DEFAULT_DATASTORE } from '../../host/index.js';
import { readSpecFile } from './pool-life.js';
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
    .command('create')
    .description("make the replica of a pool spec on a host of the fleet: phase 1 on an internal clone there, the full copy onto its datastore (reused when the host has it); its agent runs it")
    .requiredOption('-f, --file <path>', 'the pool spec (YAML or JSON): its image, disks, common scripts, access and datastore')
    .requiredOption('--host <name>', 'the host that makes it (see vmfork host list)')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, opts: { file: string; host: string; json?: boolean }) => {
        const text = await readSpecFile(opts.file);
        // checked here first: a bad spec is refused before anything is queued
        parsePoolSpecText(text);
        const r = await sendHostJob(await ctx.deps(), opts.host, { op: 'replica-make', spec: parseYaml(text) as Record<string, unknown> });
        if (opts.json) return printJson(r);
        process.stdout.write(`replica ${String(r.replica)} on host ${String(r.host)} (${r.reused ? 'reused' : 'made'})\n`);
      }),
    );
  replica
    .command('copy <id>')
    .description("copy a replica to another host of the fleet: that host's agent pulls it over NBD (TLS-PSK under the fleet's key) and checks each disk's sha256 (reused when the host has it)")
    .requiredOption('--to-host <name>', 'the host that receives it')
    .option('--datastore <name>', "the receiving host's datastore", DEFAULT_DATASTORE)
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, id: string, opts: { toHost: string; datastore: string; json?: boolean }) => {
        const r = await sendHostJob(await ctx.deps(), opts.toHost, { op: 'replica-receive', replica: id, datastore: opts.datastore });
        if (opts.json) return printJson(r);
        process.stdout.write(`replica ${String(r.replica)} on host ${String(r.host)}: ${r.reused ? 'already there' : `copied from ${String(r.fromHost)} in ${String(r.seconds)} s, sha256 checked`}\n`);
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
