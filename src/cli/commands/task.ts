import type { Command } from 'commander';
import type { TaskAccepted, TaskView } from '../../task/index.js';
import { action } from '../action.js';
import { apiClient, type ApiClient } from '../client.js';
import { printJson, printTable } from '../output.js';
import { positiveInt } from '../parse.js';
import { defaultWatchMode, taskExitCode, watchTask } from '../task-watch.js';

interface WaitOpts {
  wait?: boolean;
  json?: boolean;
}

/**
 * What every command that starts a task prints: the task id (or the 202 body with --json), or with --wait its
 * progress until it ends and the exit code of how it ended.
 */
export async function reportAccepted(client: ApiClient, accepted: TaskAccepted, what: string, opts: WaitOpts): Promise<number> {
  if (!opts.wait) {
    if (opts.json) printJson(accepted);
    else {
      const behind = accepted.queuedBehind ? `, queued behind task ${accepted.queuedBehind}` : '';
      process.stdout.write(`${what}: task ${accepted.taskId}${behind} (follow it: vmfork task watch ${accepted.taskId})\n`);
    }
    return 0;
  }
  const task = await watchTask(client, accepted.taskId, opts.json ? 'quiet' : defaultWatchMode(false));
  if (opts.json) printJson(task);
  else process.stdout.write(`${what}: ${task.state}\n`);
  return taskExitCode(task);
}

function row(t: TaskView): Record<string, unknown> {
  return { id: t.id, kind: t.kind, target: t.target, state: t.state, step: t.step, percent: t.percent, behind: t.queuedBehind ?? '-', error: t.lastError?.code, created: t.createdAt };
}

export function registerTaskCommands(program: Command): void {
  const task = program.command('task').description('tasks of the server (one per pool operation, in the queue of its pool): list, show, watch, cancel (docs/tasks.md)');

  task
    .command('list')
    .alias('ls')
    .description('list tasks, newest first')
    .option('--state <state>', 'only tasks in this state (queued, running, cancelling, succeeded, failed, cancelled)')
    .option('--target <name>', 'only tasks acting on this pool or VM')
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, opts: { state?: string; target?: string; limit: string; json?: boolean }) => {
        const q = new URLSearchParams({ limit: String(positiveInt(opts.limit, '--limit')), ...(opts.state ? { state: opts.state } : {}), ...(opts.target ? { target: opts.target } : {}) });
        const tasks = await apiClient(ctx.home).request<TaskView[]>('GET', `/v1/tasks?${q}`);
        if (opts.json) return printJson(tasks);
        if (tasks.length === 0) return void process.stdout.write('no tasks\n');
        printTable(tasks.map(row), ['id', 'kind', 'target', 'state', 'step', 'percent', 'error', 'created']);
      }),
    );

  task
    .command('show <id>')
    .description('show one task: state, step, percent, per-child progress, last error')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, id: string, opts: { json?: boolean }) => {
        const t = await apiClient(ctx.home).request<TaskView>('GET', `/v1/tasks/${encodeURIComponent(id)}`);
        if (opts.json) return printJson(t);
        for (const [k, v] of Object.entries(row(t))) process.stdout.write(`${k.padEnd(8)} ${v === undefined || v === null ? '-' : String(v)}\n`);
        if (t.lastError) process.stdout.write(`message  ${t.lastError.message}\n`);
        const children = Object.entries(t.children);
        if (children.length) printTable(children.map(([name, c]) => ({ child: name, state: c.state, percent: c.percent, error: c.error })), ['child', 'state', 'percent', 'error']);
      }),
    );

  task
    .command('watch <id>')
    .description('follow a task until it ends: progress bars on a terminal (one per child), plain lines otherwise; exits non-zero unless it succeeded')
    .option('--json', 'print each event as one JSON line')
    .action(
      action(async (ctx, id: string, opts: { json?: boolean }) => taskExitCode(await watchTask(apiClient(ctx.home), id, defaultWatchMode(opts.json)))),
    );

  task
    .command('cancel <id>')
    .description('ask a task to stop: its runner rolls back what it must and the task ends cancelled')
    .option('--wait', 'wait until it has ended')
    .option('--json', 'print JSON')
    .action(
      action(async (ctx, id: string, opts: WaitOpts) => {
        const client = apiClient(ctx.home);
        const t = await client.request<TaskView>('POST', `/v1/tasks/${encodeURIComponent(id)}/cancel`);
        if (!opts.wait) return opts.json ? printJson(t) : void process.stdout.write(`task ${id}: ${t.state}\n`);
        const ended = await watchTask(client, id, 'quiet');
        if (opts.json) printJson(ended);
        else process.stdout.write(`task ${id}: ${ended.state}\n`);
        return ended.state === 'cancelled' ? 0 : 1;
      }),
    );
}
