import { z } from 'zod';
import { TaskAcceptedSchema } from '../task/index.js';
import { getVmReconciled, type VmDeps } from '../vm/index.js';
import type { ProvisionService } from './provision-service.js';
import { defineRoute, type AnyRoute } from './route.js';
import { engine } from './routes-provision.js';
import { NameParams } from './routes-resources.js';

export const PromoteRequestSchema = z.strictObject({
  datastore: z.string().min(1).max(63).optional().describe('mirror the disks to this datastore and pivot (default: stream the backing chain into the VM\'s own images)'),
  rateMiBs: z.number().positive().max(1_000_000).optional().describe('cap on each block job\'s speed, MiB/s (default: as fast as the host allows)'),
});

/** Promotion of a running linked clone to a full clone (issue 12 item 8, docs/promote.md): a task in the VM's queue. */
export function promoteRoutes(deps: VmDeps, provision: ProvisionService | undefined): AnyRoute[] {
  return [
    defineRoute({
      method: 'POST', path: '/v1/vms/{name}/promote', operationId: 'promoteVm', tag: 'vms',
      summary: 'Promote a running linked clone to a full clone while its guest runs (block-stream, or a mirror to another datastore and a pivot): a task',
      params: NameParams, body: PromoteRequestSchema, bodyName: 'PromoteRequest', status: 202, response: TaskAcceptedSchema, responseName: 'TaskAccepted', errors: [400, 404, 409, 501, 507],
      handler: async ({ params, body }) => {
        await getVmReconciled(deps, params.name);
        return { ...(await engine(provision).promoteVm(params.name, body ?? {})), vm: params.name };
      },
    }),
  ];
}
