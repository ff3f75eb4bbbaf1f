import { Option, type Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { ACCEL_CHOICES, parseAccelChoice } from '../../host/index.js';
import { remoteHostOf, sendHostJob } from '../../host-agent/index.js';
import type { TaskAccepted } from '../../task/index.js';
import { bootVm, connectAgent, destroyVm, listVmSummaries, showVm, startVm, stopVm, vmSummary as summary } from '../../vm/index.js';
import { action } from '../action.js';
import { apiClient } from '../client.js';
import { positiveInt } from '../parse.js';
import { printJson, printTable } from '../output.js';
import { reportAccepted } from './task.js';
import { registerCheckpointCommands } from './vm-checkpoint.js';
import { registerPromoteCommand } from './vm-promote.js';
import { addReleaseCommand } from './pool-life.js';

export const accelOption = (): Option =>
  new Option('--accel <accel>', 'accelerator: kvm, tcg or auto (auto: KVM only where vmx/svm and kvm_intel/kvm_amd are present)')
    .choices(ACCEL_CHOICES as string[])
    .default('auto');

export function registerVmCommands(program: Command): void {
  const vm = program.command('vm').description('VMs (cold-booted, and forked children): boot, list, show, stop, start, destroy, exec');

  vm.command('boot')
    .description('cold-boot a VM from a linked clone of an image and wait for its guest agent (the baseline of every benchmark)')
    .requiredOption('--image <name>', 'image to boot (see: vmfork image list)')
    .option('--name <name>', 'VM name (RFC 1123 label); default vm-<random>')
    .option('--memory <size>', 'guest RAM, e.g. 512M or 1G', '512M')
    .option('--cpus <n>', 'virtual CPUs', '1')
    .addOption(accelOption())
    .option('--screen', 'give it a screen: a VGA device, served over VNC to the web console (docs/console.md)')
    .option('--host <name>', "boot it on this host of the fleet: its agent runs the boot (needs the fleet's --db; see vmfork host list)")
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, opts: { image: string; name?: string; memory: string; cpus: string; accel: string; screen?: boolean; host?: string; json?: boolean }) => {
        if (opts.host) {
          // named here, not by the agent: a boot the queue runs again (its agent died) finds its VM by this name
          const name = opts.name ?? `vm-${randomBytes(3).toString('hex')}`;
          const r = await sendHostJob(await ctx.deps(), opts.host, {
            op: 'vm-boot',
            image: opts.image,
            name,
            memory: opts.memory,
            cpus: positiveInt(opts.cpus, '--cpus'),
            accel: parseAccelChoice(opts.accel),
            ...(opts.screen ? { screen: true } : {}),
          });
          if (opts.json) return printJson(r);
          process.stdout.write(`${name}: running on host ${opts.host}${typeof r.secondsToAgent === 'number' ? ` (agent answered after ${r.secondsToAgent.toFixed(1)} s)` : ''}\n`);
          return;
        }
        const r = await bootVm(await ctx.deps(), {
          image: opts.image,
          ...(opts.name ? { name: opts.name } : {}),
          memory: opts.memory,
          cpus: positiveInt(opts.cpus, '--cpus'),
          accel: parseAccelChoice(opts.accel),
          ...(opts.screen ? { screen: true } : {}),
        });
        if (opts.json) return printJson(r);
        process.stdout.write(
          `${r.name}: agent answered after ${r.secondsToAgent.toFixed(1)} s (${r.accel}: ${r.accelReason})\n` +
            `  hostname ${r.hostname}\n  boot_id  ${r.bootId}\n  pid      ${r.pid}\n`,
        );
      }),
    );

  vm.command('list')
    .description('list VMs with their state (checked against the live QEMU processes)')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, opts: { json?: boolean }) => {
        const rows = await listVmSummaries(await ctx.deps());
        if (opts.json) return printJson(rows);
        printTable(rows, ['name', 'state', 'host', 'role', 'pool', 'ip', 'image', 'accel', 'memoryMiB', 'cpus']);
      }),
    );

  vm.command('show <name>')
    .description('show one VM: state, spec, process, files')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, name: string, opts: { json?: boolean }) => {
        const out = await showVm(await ctx.deps(), name);
        if (opts.json) return printJson(out);
        for (const [k, v] of Object.entries(out)) {
          if (k === 'spec') continue;
          process.stdout.write(`${k.padEnd(10)} ${typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v ?? '-')}\n`);
        }
      }),
    );

  vm.command('stop <name>')
    .description('power the guest off cleanly (asked through its agent or the ACPI button, again every 5 s while it runs; QEMU is told to quit after --timeout); the disk is kept. A VM on another host of the fleet is stopped by its agent')
    .option('--timeout <seconds>', 'seconds to wait for the guest to power off', '60')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, name: string, opts: { timeout: string; json?: boolean }) => {
        const deps = await ctx.deps();
        const timeoutMs = positiveInt(opts.timeout, '--timeout') * 1000;
        const host = await remoteHostOf(deps, name);
        const out = host ? await sendHostJob(deps, host, { op: 'vm-stop', name, timeoutMs }) : summary(await stopVm(deps, name, { timeoutMs }));
        if (opts.json) return printJson(out);
        process.stdout.write(`${name}: ${String(out.state)}\n`);
      }),
    );

  vm.command('start <name>')
    .description('boot a stopped VM again from its own disk and wait for its agent (forked children cannot: fork new ones). A VM on another host is started by its agent')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, name: string, opts: { json?: boolean }) => {
        const deps = await ctx.deps();
        const host = await remoteHostOf(deps, name);
        if (host) {
          const r = await sendHostJob(deps, host, { op: 'vm-start', name });
          if (opts.json) return printJson(r);
          process.stdout.write(`${name}: running on host ${host}\n`);
          return;
        }
        const r = await startVm(deps, name);
        const out = { name, state: r.vm.state, bootId: r.identity.bootId, hostname: r.identity.hostname, secondsToAgent: Math.round(r.secondsToAgent * 1000) / 1000 };
        if (opts.json) return printJson(out);
        process.stdout.write(`${name}: running (agent after ${out.secondsToAgent.toFixed(1)} s, boot_id ${out.bootId})\n`);
      }),
    );

  // power-on / power-off go through the server (vmfork serve): it owns the QEMU processes of pools' children
  for (const [verb, what] of [['power-on', 'power a VM on through the server (a pre-registered pool child is forked)'], ['power-off', 'power a VM off through the server']] as const) {
    vm.command(`${verb} <name>`)
      .description(`${what}: a task; --wait follows it`)
      .option('--wait', 'follow the task until it ends')
      .option('--json', 'print JSON')
      .action(
        action(async (ctx, name: string, opts: { wait?: boolean; json?: boolean }) => {
          const client = apiClient(ctx.home);
          const accepted = await client.request<TaskAccepted>('POST', `/v1/vms/${encodeURIComponent(name)}/${verb}`);
          return reportAccepted(client, accepted, `${name} ${verb}`, opts);
        }),
      );
  }

  registerCheckpointCommands(vm);
  registerPromoteCommand(vm);

  addReleaseCommand(vm);

  vm.command('destroy <name>')
    .description('kill the VM if running and delete its disk and record (a VM on another host: by its agent)')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, name: string, opts: { json?: boolean }) => {
        const deps = await ctx.deps();
        const host = await remoteHostOf(deps, name);
        if (host) await sendHostJob(deps, host, { op: 'vm-destroy', name });
        else await destroyVm(deps, name);
        if (opts.json) return printJson({ name, destroyed: true });
        process.stdout.write(`${name}: destroyed\n`);
      }),
    );

  vm.command('exec <name> <command...>')
    .description('run a command in the guest through the agent; prints its stdout/stderr and exits with its exit code (use -- before the command)')
    .option('--timeout <seconds>', 'seconds the command may run', '60')
    .option('--json', 'print JSON (exitCode, stdout, stderr) instead of passing output through')
    .action(
      action(async (ctx, name: string, command: string[], opts: { timeout: string; json?: boolean }) => {
        const [path, ...args] = command;
        const deps = await ctx.deps();
        const timeoutMs = positiveInt(opts.timeout, '--timeout') * 1000;
        const host = await remoteHostOf(deps, name);
        if (host) {
          // the VM's guest agent socket is on its host: the command runs there, its output comes back in the answer
          const r = await sendHostJob(deps, host, { op: 'vm-exec', name, command, timeoutMs });
          if (opts.json) printJson({ exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, truncated: r.truncated });
          else {
            process.stdout.write(String(r.stdout));
            process.stderr.write(String(r.stderr));
          }
          return Number(r.exitCode);
        }
        const agent = await connectAgent(deps, name);
        try {
          const r = await agent.exec(path ?? '', args, { timeoutMs });
          if (opts.json) {
            printJson({ exitCode: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString(), truncated: r.truncated });
          } else {
            process.stdout.write(r.stdout);
            process.stderr.write(r.stderr);
          }
          return r.exitCode;
        } finally {
          agent.close();
        }
      }),
    );
}
