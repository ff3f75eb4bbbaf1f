import { requireVm } from '../store/index.js';
import { enqueueTask, vmLock, type Enqueued, type TaskRunners } from '../task/index.js';
import { planPromote, promoteVm, type PromoteRequest, type VmDeps } from '../vm/index.js';

/** Task kinds of promotion: a server registers these runners to resume them after a crash. */
export const PROMOTE_TASKS = ['vm-promote'] as const;

const requestOf = (input: Record<string, unknown>): PromoteRequest => ({
  ...(typeof input.datastore === 'string' ? { datastore: input.datastore } : {}),
  ...(typeof input.rateMiBs === 'number' ? { rateMiBs: input.rateMiBs } : {}),
});

/**
 * Promotion of a linked clone to a full clone (docs/promote.md) as a task, queued like power and checkpoints: in
 * the VM's pool queue under the VM's own lock (a VM outside any pool queues on itself). The request is checked
 * when it is made (bad input is an error at once and changes nothing) and again by the runner when its turn comes.
 */
export function createPromoteService(deps: VmDeps) {
  const runners: TaskRunners = {
    'vm-promote': async (ctx) => {
      await ctx.step('check', 2);
      const r = await promoteVm(deps, ctx.target, { ...requestOf(ctx.input), report: (step, percent) => ctx.step(step, percent), signal: ctx.signal, resume: ctx.resume });
      for (const d of r.disks) {
        await ctx.event('disk', `${ctx.target}: ${d.id} is ${d.path}, with no backing file (${(d.bytes / 1024 ** 2).toFixed(0)} MiB in ${d.seconds.toFixed(1)} s)`, { ...d });
      }
      await ctx.event('promoted', `${ctx.target}: a full clone (${r.mode}, ${r.mibPerSecond} MiB/s); RAM: ${r.ram}`, { template: r.template, mode: r.mode, mibPerSecond: r.mibPerSecond });
      await ctx.step('done', 100);
      return { ...r };
    },
  };

  return {
    runners,

    /** Checks the request (state, datastore, room), then queues the promotion. */
    async promoteVm(vm: string, request: PromoteRequest): Promise<Enqueued> {
      await planPromote(deps, vm, request);
      const row = await requireVm(deps.db, vm);
      const input = { ...requestOf(request as Record<string, unknown>) };
      return enqueueTask(deps, { kind: 'vm-promote', target: vm, input, queue: row.pool_name ?? `vm:${vm}`, lock: vmLock(vm) }, runners['vm-promote'] as TaskRunners[string]);
    },
  };
}
