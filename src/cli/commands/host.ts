import type { Command } from 'commander';
import { listHosts } from '../../host/index.js';
import { listHostJobs, parseHostAgentOptions, startHostAgent, type RawHostAgentOptions } from '../../host-agent/index.js';
import { formatBytes } from '../../util/index.js';
import { action } from '../action.js';
import { printJson, printTable } from '../output.js';
import { positiveInt } from '../parse.js';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function registerHostAgentCommand(program: Command): void {
  program
    .command('host-agent')
    .description('run the agent of this host on a shared PostgreSQL store (--db): registers the host and its datastores, holds its name, sends heartbeats, finds lost hosts (docs/hosts.md); SIGTERM stops it, the host is then down')
    .option('--host <name>', 'the name of this host in the fleet (one agent per name)')
    .option('--listen <host:port>', 'where the other hosts and servers reach this agent')
    .option('--datastore <name=path>', 'a datastore of this host (repeat for more); a marker in the directory names its host', collect)
    .option('--heartbeat-seconds <s>', 'seconds between heartbeats', '5')
    .option('--lost-after-seconds <s>', 'a host whose heartbeats stopped this long is lost (default 3 heartbeats)')
    .option('--fleet-key-file <path>', "the fleet's secret key (the same 0600 file on every host; e.g. openssl rand -hex 32): replica copies between hosts are keyed by it")
    .option('--max-copies <n>', 'replica copies this host receives at once', '2')
    .option('--cpu-allocation-ratio <r>', 'vCPUs placed children may have per CPU of this host (Nova\'s cpu_allocation_ratio)', '16')
    .action(
      action(async (ctx, raw: RawHostAgentOptions) => {
        const options = parseHostAgentOptions(raw);
        const agent = await startHostAgent({ db: ctx.home.db, home: ctx.home, log: ctx.log, say: (line) => process.stdout.write(`vmfork host-agent: ${line}\n`) }, options);
        process.stdout.write(`vmfork host-agent: host ${agent.host} up (generation ${agent.generation}), listening on ${agent.url}\n`);
        const stop = (signal: string): void => {
          process.stdout.write(`vmfork host-agent: ${signal}: stopping; host ${agent.host} goes down\n`);
          void agent.stop();
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
        await agent.done;
      }),
    );
}

export function registerHostCommands(program: Command): void {
  const host = program.command('host').description('the hosts of the fleet: this one, and those of host agents on a shared store (docs/hosts.md)');
  host
    .command('list')
    .alias('ls')
    .description('list hosts: state, agent, heartbeat, CPUs, RAM, accelerator, datastores and their free space')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, opts: { json?: boolean }) => {
        const hosts = await listHosts(await ctx.deps());
        if (opts.json) return printJson(hosts);
        printTable(
          hosts.map((h) => ({
            id: h.id,
            state: h.state,
            hostname: h.hostname,
            generation: h.agent?.generation ?? '-',
            heartbeat: h.agent?.heartbeatAt ?? '-',
            cpus: h.agent?.cpus ?? '-',
            memory: h.agent ? formatBytes(h.agent.memoryBytes) : '-',
            accel: h.agent?.accel ?? '-',
            datastores: h.datastores.map((d) => `${d.name}=${d.path} (${formatBytes(d.freeBytes)} free)`).join(', '),
          })),
          ['id', 'state', 'hostname', 'generation', 'heartbeat', 'cpus', 'memory', 'accel', 'datastores'],
        );
      }),
    );
  host
    .command('jobs <host>')
    .description("a host's job queue, newest first: each job's op, state (created, retry, active, completed, failed), attempts and error (docs/jobs.md)")
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, name: string, opts: { limit: string; json?: boolean }) => {
        const jobs = await listHostJobs(await ctx.deps(), name, positiveInt(opts.limit, '--limit'));
        if (opts.json) return printJson(jobs);
        if (jobs.length === 0) return void process.stdout.write(`no jobs for host ${name}\n`);
        printTable(
          jobs.map((j) => ({ id: j.id, op: j.op, state: j.state, attempts: j.attempts, created: j.createdAt, ended: j.endedAt ?? '-', error: j.error ?? '-' })),
          ['id', 'op', 'state', 'attempts', 'created', 'ended', 'error'],
        );
      }),
    );
}
