import type { Command } from 'commander';
import { createNetwork, deleteNetwork, listNetworks, showNetwork, type NetworkDetail, type NetworkSummary } from '../../network/index.js';
import { action } from '../action.js';
import { printJson, printTable } from '../output.js';

interface JsonOpt {
  json?: boolean;
}

function tableRow(n: NetworkSummary): Record<string, unknown> {
  return {
    name: n.name,
    cidr: n.cidr,
    namespace: n.netns,
    gateway: n.gateway,
    used: n.used,
    free: n.free,
    present: n.present ? 'yes' : 'no',
    state: n.state,
  };
}

function printDetail(d: NetworkDetail): void {
  const lines = [
    `name:       ${d.name}`,
    `cidr:       ${d.cidr}`,
    `namespace:  ${d.netns} (${d.present ? 'present' : 'absent: recreated on next use'})`,
    `bridge:     ${d.bridge}`,
    `gateway:    ${d.gateway}`,
    `state:      ${d.state}`,
    `addresses:  ${d.used} used, ${d.free} free of ${d.total}`,
    `health:     ${d.problems === null ? 'unknown (needs root)' : d.problems.length === 0 ? 'ok' : d.problems.join('; ')}`,
    `created:    ${d.createdAt}`,
    '',
  ];
  process.stdout.write(lines.join('\n'));
  if (d.leases.length === 0) {
    process.stdout.write('no leases\n');
    return;
  }
  printTable(
    d.leases.map((l) => ({ vm: l.vmName, ip: `${l.ip}/${l.prefix}`, mac: l.mac, tap: l.tap, allocated: l.allocatedAt })),
    ['vm', 'ip', 'mac', 'tap', 'allocated'],
  );
}

export function registerNetworkCommands(program: Command): void {
  const network = program
    .command('network')
    .description('isolated networks: a bridge in a network namespace of its own, a tap and an IPv4 lease per VM (docs/networks.md)');

  network
    .command('create')
    .description('create a network (needs root); nothing on it can reach outside its namespace')
    .argument('<name>', 'network name: RFC 1123 label, at most 15 characters')
    .requiredOption('--cidr <cidr>', 'private IPv4 range, /16 to /30, e.g. 10.231.1.0/24')
    .option('--json', 'print the created network as JSON')
    .action(
      action(async (ctx, name: string, opts: JsonOpt & { cidr: string }) => {
        const { network: net, normalizedFrom } = await createNetwork(await ctx.db(), { name, cidr: opts.cidr });
        ctx.log.info({ network: net.name, cidr: net.cidr, netns: net.netns }, 'network created');
        const [summary] = (await listNetworks(await ctx.db())).filter((n) => n.name === net.name);
        if (opts.json) {
          printJson({ ...summary, normalizedFrom: normalizedFrom ?? null });
          return;
        }
        if (normalizedFrom) process.stdout.write(`note: ${normalizedFrom} has host bits set; using ${net.cidr}\n`);
        process.stdout.write(`created network ${net.name}: ${net.cidr}, gateway ${net.gateway} in namespace ${net.netns}\n`);
      }),
    );

  network
    .command('list')
    .alias('ls')
    .description('list networks with their address usage and whether their namespace exists on this host')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, opts: JsonOpt) => {
        const nets = await listNetworks(await ctx.db());
        if (opts.json) printJson(nets);
        else if (nets.length === 0) process.stdout.write('no networks (vmfork network create NAME --cidr CIDR)\n');
        else printTable(nets.map(tableRow), ['name', 'cidr', 'namespace', 'gateway', 'used', 'free', 'present', 'state']);
      }),
    );

  network
    .command('show')
    .description('show a network, its leases and (as root) the health of its namespace')
    .argument('<name>', 'network name')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, name: string, opts: JsonOpt) => {
        const detail = await showNetwork(await ctx.db(), name);
        if (opts.json) printJson(detail);
        else printDetail(detail);
      }),
    );

  network
    .command('rm')
    .description('remove a network and its namespace (needs root); refused while any VM holds a lease on it')
    .argument('<name>', 'network name')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, name: string, opts: JsonOpt) => {
        const result = await deleteNetwork(await ctx.db(), name);
        ctx.log.info({ network: name, ...result }, 'network removed');
        if (opts.json) {
          printJson({ removed: name, ...result });
          return;
        }
        const what = { deleted: 'deleted', absent: 'was already gone', foreign: 'left in place: it does not belong to this data dir' }[result.namespace];
        process.stdout.write(`removed network ${name}; namespace ${result.netns} ${what}\n`);
      }),
    );
}
