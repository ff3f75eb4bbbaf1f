import { z } from 'zod';
import { requireVm } from '../store/index.js';
import { enqueueTask, vmLock, type Enqueued, type TaskContext, type TaskRunners } from '../task/index.js';
import { checkpointVm, listVmCheckpoints, planCheckpoint, planRevert, revertVm, type VmDeps } from '../vm/index.js';

/** Task kinds of checkpoints: a server registers these runners to resume them after a crash. */
export const CHECKPOINT_TASKS = ['vm-checkpoint', 'vm-revert'] as const;
export type CheckpointTaskKind = (typeof CHECKPOINT_TASKS)[number];

export interface CheckpointRequest {
  label?: string;
  /** @default true */
  memory?: boolean;
}

export const CheckpointViewSchema = z.object({
  label: z.string(),
  /** The device and RAM state were saved: a revert resumes at the checkpoint's instruction. */
  memory: z.boolean(),
  createdAt: z.string(),
  disks: z.array(z.object({ id: z.string(), path: z.string() })).describe('the frozen disk layers, cut at the same instant as the state'),
  statePath: z.string().optional(),
});
export type CheckpointView = z.infer<typeof CheckpointViewSchema>;

const stepper = (ctx: TaskContext) => (step: string, percent: number) => ctx.step(step, percent);

/**
 * Checkpoint and revert of a VM as tasks, queued like its power operations: in its pool's queue under the VM's
 * own lock (a VM outside any pool queues on itself), so neither meets a converge of its pool or another operation
 * on the same VM. Requests are checked when they are made (bad input is an error at once and changes nothing) and
 * again by the runner when its turn comes.
 */
export function createCheckpointService(deps: VmDeps) {
  const runners: Record<CheckpointTaskKind, TaskRunners[string]> = {
    'vm-checkpoint': async (ctx) => {
      const label = typeof ctx.input.label === 'string' ? ctx.input.label : undefined;
      const r = await checkpointVm(deps, ctx.target, { ...(label ? { label } : {}), memory: ctx.input.memory !== false, report: stepper(ctx), resume: ctx.resume });
      await ctx.event('checkpoint', `${ctx.target}: checkpoint ${r.label} (guest stopped ${r.pausedMs} ms, file systems frozen ${r.frozenMs} ms)`, { label: r.label, pausedMs: r.pausedMs, frozenMs: r.frozenMs });
      await ctx.step('done', 100);
      return { ...r };
    },
    'vm-revert': async (ctx) => {
      const r = await revertVm(deps, ctx.target, String(ctx.input.to), { report: stepper(ctx) });
      await ctx.event('revert', `${ctx.target}: reverted to ${r.to} (down ${r.downMs} ms, boot_id ${r.identity.bootId})`, { to: r.to, downMs: r.downMs, bootId: r.identity.bootId });
      await ctx.step('done', 100);
      return { ...r };
    },
  };

  const enqueue = async (kind: CheckpointTaskKind, vm: string, input: Record<string, unknown>): Promise<Enqueued> => {
    const row = await requireVm(deps.db, vm);
    return enqueueTask(deps, { kind, target: vm, input, queue: row.pool_name ?? `vm:${vm}`, lock: vmLock(vm) }, runners[kind]);
  };

  return {
    runners: runners as TaskRunners,

    /** Queues a checkpoint; the label (the given one, or the timestamp-derived default) is fixed now. */
    async checkpointVm(vm: string, request: CheckpointRequest): Promise<Enqueued & { label: string }> {
      const { label } = await planCheckpoint(deps, vm, request.label, { memory: request.memory !== false });
      return { ...(await enqueue('vm-checkpoint', vm, { label, memory: request.memory !== false })), label };
    },

    async revertVm(vm: string, request: { to: string }): Promise<Enqueued> {
      await planRevert(deps, vm, request.to);
      return enqueue('vm-revert', vm, { to: request.to });
    },

    listCheckpoints: (vm: string): Promise<CheckpointView[]> => listVmCheckpoints(deps, vm),
  };
}
