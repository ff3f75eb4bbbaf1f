import type { Command } from 'commander';
import { VmforkError } from '../../errors.js';
import type { TaskAccepted } from '../../task/index.js';
import { action } from '../action.js';
import { apiClient } from '../client.js';
import { reportAccepted } from './task.js';

function rate(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new VmforkError('VMFORK_INVALID_ARGUMENT', `--rate must be a positive number of MiB/s, not "${value}"`, { details: { rate: value } });
  return n;
}

/**
 * `vm promote`: through the server (vmfork serve), which owns the QEMU processes and runs the promotion as a task in
 * the VM's queue (docs/promote.md).
 */
export function registerPromoteCommand(vm: Command): void {
  vm.command('promote <name>')
    .description('promote a running linked clone to a full clone while its guest runs (its backing chain streamed into its own images, or mirrored to --datastore and pivoted); a task, --wait follows it')
    .option('--datastore <name>', 'mirror the disks to this datastore (vmfork host list) and pivot; default: stream in place')
    .option('--rate <MiB/s>', 'cap each block job at this many MiB/s (default: as fast as the host allows)')
    .option('--wait', 'follow the task until it ends')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, name: string, opts: { datastore?: string; rate?: string; wait?: boolean; json?: boolean }) => {
        const body = { ...(opts.datastore !== undefined ? { datastore: opts.datastore } : {}), ...(opts.rate !== undefined ? { rateMiBs: rate(opts.rate) } : {}) };
        const client = apiClient(ctx.home);
        const accepted = await client.request<TaskAccepted>('POST', `/v1/vms/${encodeURIComponent(name)}/promote`, { json: body });
        return reportAccepted(client, accepted, `${name} promote`, opts);
      }),
    );
}
