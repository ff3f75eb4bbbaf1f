import type { Command } from 'commander';
import type { TaskAccepted } from '../../task/index.js';
import { action } from '../action.js';
import { apiClient } from '../client.js';
import { printJson, printTable } from '../output.js';
import { reportAccepted } from './task.js';

/**
 * `vm checkpoint`, `vm revert` and `vm checkpoints`: through the server (vmfork serve), which owns the QEMU
 * processes and runs both as tasks in the VM's queue (docs/checkpoint.md).
 */
export function registerCheckpointCommands(vm: Command): void {
  vm.command('checkpoint <name>')
    .description('checkpoint a running VM through the server: file systems frozen, disks and (by default) memory saved at one instant, the guest runs on; a task, --wait follows it')
    .option('--label <label>', 'the checkpoint\'s label (default: ckpt-YYYYMMDD-HHMMSS of now, UTC)')
    .option('--no-memory', 'save the disks only (such a checkpoint cannot be reverted to without a boot, which vmfork does not do yet)')
    .option('--wait', 'follow the task until it ends')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, name: string, opts: { label?: string; memory: boolean; wait?: boolean; json?: boolean }) => {
        const client = apiClient(ctx.home);
        const body = { ...(opts.label !== undefined ? { label: opts.label } : {}), memory: opts.memory };
        const accepted = await client.request<TaskAccepted & { label: string }>('POST', `/v1/vms/${encodeURIComponent(name)}/checkpoints`, { json: body });
        return reportAccepted(client, accepted, `${name} checkpoint ${accepted.label}`, opts);
      }),
    );

  vm.command('revert <name>')
    .description('revert a VM to one of its checkpoints without a boot (same name, MAC and address) through the server; a task, --wait follows it')
    .requiredOption('--to <label>', 'the checkpoint to revert to (vmfork vm checkpoints NAME)')
    .option('--wait', 'follow the task until it ends')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, name: string, opts: { to: string; wait?: boolean; json?: boolean }) => {
        const client = apiClient(ctx.home);
        const accepted = await client.request<TaskAccepted>('POST', `/v1/vms/${encodeURIComponent(name)}/revert`, { json: { to: opts.to } });
        return reportAccepted(client, accepted, `${name} revert to ${opts.to}`, opts);
      }),
    );

  vm.command('checkpoints <name>')
    .description('list a VM\'s checkpoints, oldest first')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, name: string, opts: { json?: boolean }) => {
        const rows = await apiClient(ctx.home).request<{ label: string; memory: boolean; createdAt: string; disks: unknown[] }[]>('GET', `/v1/vms/${encodeURIComponent(name)}/checkpoints`);
        if (opts.json) return printJson(rows);
        printTable(rows.map((r) => ({ label: r.label, memory: r.memory, created: r.createdAt, disks: r.disks.length })), ['label', 'memory', 'created', 'disks']);
      }),
    );
}
