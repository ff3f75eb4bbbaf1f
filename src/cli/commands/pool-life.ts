import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { VmforkError } from '../../errors.js';
import type { ClaimResult, ClaimView } from '../../pool/index.js';
import type { TaskAccepted } from '../../task/index.js';
import { action } from '../action.js';
import { apiClient } from '../client.js';
import { printJson, printTable } from '../output.js';
import { durationSeconds, nonNegativeInt, positiveInt } from '../parse.js';
import { reportAccepted } from './task.js';

/** `vmfork pool claim` and `vmfork pool claims`: a user takes a ready child, and who holds what (docs/lifecycle.md). */
export function addClaimCommands(pool: Command): void {
  pool
    .command('claim <name>')
    .description('claim a ready child of a pool (a spare at once, else one forked for you); prints it once it is ready')
    .option('--user <user>', 'who the child is for (shown by `vmfork pool claims`)')
    .option('--ttl <duration>', 'release (refresh) the child this long after the claim: 90s, 30m, 1h, 2d')
    .option('--wait-seconds <n>', 'with no child left, wait up to this long for one instead of failing (VMFORK_POOL_EXHAUSTED)')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, name: string, opts: { user?: string; ttl?: string; waitSeconds?: string; json?: boolean }) => {
        const body = {
          ...(opts.user !== undefined ? { user: opts.user } : {}),
          ...(opts.ttl !== undefined ? { ttlSeconds: durationSeconds(opts.ttl, '--ttl') } : {}),
          ...(opts.waitSeconds !== undefined ? { waitSeconds: positiveInt(opts.waitSeconds, '--wait-seconds') } : {}),
        };
        const c = await apiClient(ctx.home).request<ClaimResult>('POST', `/v1/pools/${encodeURIComponent(name)}/claim`, { json: body });
        if (opts.json) return printJson(c);
        const until = c.expiresAt ? `, until ${c.expiresAt}` : '';
        process.stdout.write(`${c.vm}: claimed${c.user ? ` for ${c.user}` : ''} (${c.how === 'spare' ? 'a spare' : 'forked for this claim'}, ${c.tookMs} ms${until})\n`);
        process.stdout.write(`  ip ${c.ip ?? '-'}  mac ${c.mac ?? '-'}  ssh host key ${c.sshHostKeys.join(', ') || '-'}\n  vmfork ssh ${c.vm}; give it back: vmfork vm release ${c.vm}\n`);
      }),
    );

  pool
    .command('claims [pool]')
    .description('who holds which child, since when and until when (claimed and releasing children)')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, name: string | undefined, opts: { json?: boolean }) => {
        const q = name ? `?pool=${encodeURIComponent(name)}` : '';
        const claims = await apiClient(ctx.home).request<ClaimView[]>('GET', `/v1/claims${q}`);
        if (opts.json) return printJson(claims);
        if (claims.length === 0) return void process.stdout.write('no claims\n');
        printTable(
          claims.map((c) => ({ vm: c.vm, pool: c.pool, user: c.user ?? '-', state: c.state, ip: c.ip ?? '-', since: c.claimedAt ?? '-', until: c.expiresAt ?? '-' })),
          ['vm', 'pool', 'user', 'state', 'ip', 'since', 'until'],
        );
      }),
    );
}

/** `vmfork pool update`: push a new image or spec to a pool (a task). */
export function addUpdateCommand(pool: Command): void {
  pool
    .command('update <name>')
    .description('push a new image or spec to a pool: the new replica is made while the old one serves, then children move to it (a task)')
    .requiredOption('-f, --file <path>', 'the new pool spec (YAML or JSON); its name must be the pool\'s')
    .option('--min-ready <n>', 'never fewer ready children than this while children are replaced', '0')
    .option('--force', 'claimed children too: notify their users, then replace them after --grace-seconds')
    .option('--at-release', 'claimed children move at their release (the default)')
    .option('--grace-seconds <n>', 'with --force: how long users have after the notice', '60')
    .option('--wait', 'follow the task until it ends')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, name: string, opts: { file: string; minReady: string; force?: boolean; atRelease?: boolean; graceSeconds: string; wait?: boolean; json?: boolean }) => {
        if (opts.force && opts.atRelease) throw new VmforkError('VMFORK_INVALID_ARGUMENT', '--force and --at-release exclude each other', { details: { flags: ['--force', '--at-release'] } });
        const text = await readSpecFile(opts.file);
        const q = new URLSearchParams({ minReady: String(nonNegativeInt(opts.minReady, '--min-ready')), mode: opts.force ? 'force' : 'at-release', graceSeconds: String(nonNegativeInt(opts.graceSeconds, '--grace-seconds')) });
        const client = apiClient(ctx.home);
        const accepted = await client.request<TaskAccepted>('PUT', `/v1/pools/${encodeURIComponent(name)}?${q}`, { yaml: text });
        return reportAccepted(client, accepted, `pool ${name} update`, opts);
      }),
    );
}

/** `vmfork vm release`: give a claimed child back; the server refreshes it (a task). */
export function addReleaseCommand(vm: Command): void {
  vm.command('release <name>')
    .description('give a claimed pool child back: the server refreshes it (same name, MAC and IP; nothing of its last user) — a task; --wait follows it')
    .option('--wait', 'follow the task until the child is a ready spare again')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, name: string, opts: { wait?: boolean; json?: boolean }) => {
        const client = apiClient(ctx.home);
        const accepted = await client.request<TaskAccepted>('POST', `/v1/vms/${encodeURIComponent(name)}/release`);
        return reportAccepted(client, accepted, `${name} release`, opts);
      }),
    );
}

/** A spec file's text, sent as written (the server validates it and names every field at fault). */
export async function readSpecFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `cannot read --file ${path}: ${(err as NodeJS.ErrnoException).code}`, { cause: err });
  }
}
