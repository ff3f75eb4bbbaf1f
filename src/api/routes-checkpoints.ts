import { z } from 'zod';
import { CheckpointViewSchema } from '../pool/index.js';
import { TaskAcceptedSchema } from '../task/index.js';
import { getVmReconciled, type VmDeps } from '../vm/index.js';
import type { ProvisionService } from './provision-service.js';
import { defineRoute, type AnyRoute } from './route.js';
import { engine } from './routes-provision.js';
import { NameParams } from './routes-resources.js';

const label = z.string().min(1).max(63).describe('letters, digits, ".", "_" or "-", starting with a letter or digit');

export const CheckpointRequestSchema = z.strictObject({
  label: label.optional().describe('default: derived from the time (ckpt-YYYYMMDD-HHMMSS)'),
  memory: z.boolean().optional().describe('save the device and RAM state too (default true)'),
});

export const RevertRequestSchema = z.strictObject({ to: label.describe('the checkpoint to revert to') });

/** A running VM's checkpoints (issue 12 item 7): taken and reverted to as tasks in the VM's queue, like power. */
export function checkpointRoutes(deps: VmDeps, provision: ProvisionService | undefined): AnyRoute[] {
  return [
    defineRoute({
      method: 'POST', path: '/v1/vms/{name}/checkpoints', operationId: 'checkpointVm', tag: 'vms',
      summary: 'Checkpoint a running VM (file systems frozen, disks and by default memory saved at one instant, guest running on): a task',
      params: NameParams, body: CheckpointRequestSchema, bodyName: 'CheckpointRequest', status: 202,
      response: TaskAcceptedSchema.extend({ label: z.string() }), responseName: 'CheckpointAccepted', errors: [404, 409, 501],
      handler: async ({ params, body }) => {
        await getVmReconciled(deps, params.name);
        return { ...(await engine(provision).checkpointVm(params.name, body ?? {})), vm: params.name };
      },
    }),
    defineRoute({
      method: 'GET', path: '/v1/vms/{name}/checkpoints', operationId: 'listCheckpoints', tag: 'vms', summary: 'A VM\'s checkpoints, oldest first',
      params: NameParams, status: 200, response: z.array(CheckpointViewSchema), responseName: 'CheckpointList', errors: [404, 501],
      handler: ({ params }) => engine(provision).listCheckpoints(params.name),
    }),
    defineRoute({
      method: 'POST', path: '/v1/vms/{name}/revert', operationId: 'revertVm', tag: 'vms',
      summary: 'Revert a VM to a checkpoint without a boot (same name, MAC and address; the checkpoint\'s disks and memory): a task',
      params: NameParams, body: RevertRequestSchema, bodyName: 'RevertRequest', status: 202, response: TaskAcceptedSchema, responseName: 'TaskAccepted', errors: [404, 409, 501],
      handler: async ({ params, body }) => ({ ...(await engine(provision).revertVm(params.name, body)), vm: params.name }),
    }),
  ];
}
