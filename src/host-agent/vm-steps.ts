import { forkChildren } from '../fork/index.js';
import { getTemplate, getVm } from '../store/index.js';
import { createTemplate, removeTemplate } from '../template/index.js';
import { connectAgent } from '../vm/index.js';
import type { StepContext } from './step-context.js';

/** The most of a command's output an answer carries (answers sit in the queue's tables). */
const EXEC_OUTPUT_MAX = 256 * 1024;

export async function createTemplateHere(
  ctx: StepContext,
  job: { name: string; image: string; memory?: string | undefined; cpus?: number | undefined; network?: string | undefined; accel?: string | undefined; screen?: boolean | undefined },
  attempt: number,
  signal: AbortSignal,
): Promise<Record<string, unknown>> {
  const found = attempt > 0 ? await getTemplate(ctx.deps.db, job.name) : undefined;
  if (found?.state === 'ready' && found.host_id === ctx.deps.hostId && found.image_name === job.image) return { name: job.name, host: ctx.deps.hostId, state: 'ready', alreadyCreated: true };
  const record = await createTemplate(ctx.deps, {
    name: job.name,
    image: job.image,
    ...(job.memory ? { memory: job.memory } : {}),
    ...(job.cpus ? { cpus: job.cpus } : {}),
    ...(job.network ? { network: job.network } : {}),
    ...(job.accel ? { accel: job.accel as 'auto' | 'kvm' | 'tcg' } : {}),
    ...(job.screen ? { screen: true } : {}),
    signal,
  });
  return { name: job.name, host: ctx.deps.hostId, state: 'ready', accel: record.accel, forkPath: record.forkPath, coldBootSeconds: record.coldBootSeconds, cutMs: record.cutMs };
}

export async function removeTemplateHere(ctx: StepContext, name: string, attempt: number): Promise<Record<string, unknown>> {
  if (attempt > 0 && !(await getTemplate(ctx.deps.db, name))) return { name, removed: true };
  await removeTemplate(ctx.deps, name);
  return { name, removed: true };
}

/**
 * Forks the named children here. Run again (its agent died mid-fork, and the new one rolled back the children it
 * left half-made), it forks only the names that are not already running children of this template here.
 */
export async function forkHere(
  ctx: StepContext,
  job: { template: string; names: string[]; network?: string | undefined; awaitKicks?: boolean | undefined },
  attempt: number,
  signal: AbortSignal,
): Promise<Record<string, unknown>> {
  const already: string[] = [];
  if (attempt > 0) {
    for (const name of job.names) {
      const vm = await getVm(ctx.deps.db, name);
      if (vm?.template_name === job.template && vm.host_id === ctx.deps.hostId && vm.state === 'running') already.push(name);
    }
  }
  const names = job.names.filter((n) => !already.includes(n));
  const result = names.length
    ? await forkChildren(ctx.deps, {
        template: job.template,
        count: names.length,
        names,
        ...(job.network ? { network: job.network } : {}),
        awaitKicks: job.awaitKicks ?? false,
        signal,
      })
    : undefined;
  return { host: ctx.deps.hostId, ...(result ?? { template: job.template, children: [], failed: [], wallMs: 0 }), already };
}

export async function execHere(ctx: StepContext, name: string, command: string[], timeoutMs: number): Promise<Record<string, unknown>> {
  const [path, ...args] = command;
  const agent = await connectAgent(ctx.deps, name);
  try {
    const r = await agent.exec(path ?? '', args, { timeoutMs });
    const cut = (b: Buffer): string => b.subarray(0, EXEC_OUTPUT_MAX).toString();
    const truncated = r.truncated || r.stdout.length > EXEC_OUTPUT_MAX || r.stderr.length > EXEC_OUTPUT_MAX;
    return { name, exitCode: r.exitCode, stdout: cut(r.stdout), stderr: cut(r.stderr), truncated };
  } finally {
    agent.close();
  }
}
