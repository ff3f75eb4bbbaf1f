import { z } from 'zod';
import { VmforkError } from '../errors.js';
import { PoolDetailSchema, PoolSpecInputSchema, PoolSummarySchema, ResizeRequestSchema } from '../pool/index.js';
import { remoteHostOf, remoteHostOfReplica, sendHostJob } from '../host-agent/index.js';
import { ReplicaViewSchema } from '../replica/index.js';
import { TaskAcceptedSchema } from '../task/index.js';
import { destroyVm, getVmReconciled, listVmSummaries, showVm, type VmDeps } from '../vm/index.js';
import type { ProvisionService } from './provision-service.js';
import { defineRoute, type AnyRoute } from './route.js';
import { NameParams } from './routes-resources.js';
import { VmDetailSchema, VmViewSchema } from './views.js';

/** The provisioning engine, or 501 from a server started without one (read-only routes still work there). */
export function engine(provision: ProvisionService | undefined): ProvisionService {
  if (!provision) throw new VmforkError('VMFORK_NOT_SUPPORTED', 'this server was started without the provisioning engine');
  return provision;
}

/** Pools, replicas and VMs: reads through the VM room, pool operations and power through the provisioning engine. */
export function provisionRoutes(deps: VmDeps, provision: ProvisionService | undefined): AnyRoute[] {
  return [
    defineRoute({
      method: 'GET', path: '/v1/vms', operationId: 'listVms', tag: 'vms', summary: 'VMs with their state checked against their QEMU processes; ?pool= for one pool\'s children',
      query: z.strictObject({ pool: z.string().optional().describe('only the children of this pool') }),
      status: 200, response: z.array(VmViewSchema), responseName: 'VmList', errors: [404],
      handler: async ({ query }) => {
        const members = query.pool === undefined ? undefined : new Set((await engine(provision).getPool(query.pool)).vms.map((v) => v.name));
        return (await listVmSummaries(deps)).filter((r) => !members || members.has(String(r.name)));
      },
    }),
    defineRoute({
      method: 'GET', path: '/v1/vms/{name}', operationId: 'getVm', tag: 'vms', summary: 'One VM: state, spec, QEMU process, files',
      params: NameParams, status: 200, response: VmDetailSchema, responseName: 'VmDetail', errors: [404],
      handler: ({ params }) => showVm(deps, params.name),
    }),
    defineRoute({
      method: 'POST', path: '/v1/vms/{name}/power-on', operationId: 'powerOnVm', tag: 'vms', summary: 'Power a VM on (a pre-registered child is forked): a task',
      params: NameParams, status: 202, response: TaskAcceptedSchema, responseName: 'TaskAccepted', errors: [404, 409, 501, 507],
      handler: async ({ params }) => {
        await getVmReconciled(deps, params.name);
        return { ...(await engine(provision).powerOn(params.name)), vm: params.name };
      },
    }),
    defineRoute({
      method: 'POST', path: '/v1/vms/{name}/power-off', operationId: 'powerOffVm', tag: 'vms', summary: 'Power a VM off: a task',
      params: NameParams, status: 202, response: TaskAcceptedSchema, responseName: 'TaskAccepted', errors: [404, 409, 501],
      handler: async ({ params }) => {
        await getVmReconciled(deps, params.name);
        return { ...(await engine(provision).powerOff(params.name)), vm: params.name };
      },
    }),
    defineRoute({
      method: 'DELETE', path: '/v1/vms/{name}', operationId: 'destroyVm', tag: 'vms', summary: 'Destroy a VM: its QEMU, taps, addresses, files and record',
      params: NameParams, status: 200, response: z.object({ name: z.string(), destroyed: z.literal(true), killedPid: z.number().int().optional(), released: z.array(z.string()) }),
      responseName: 'VmDestroyed', errors: [404, 409],
      handler: async ({ params }) => {
        // a VM on another host of the fleet: its QEMU, taps and files are there, and its agent destroys it
        const host = await remoteHostOf(deps, params.name);
        if (host) return (await sendHostJob(deps, host, { op: 'vm-destroy', name: params.name })) as { name: string; destroyed: true; killedPid?: number; released: string[] };
        return { ...(await destroyVm(deps, params.name)), destroyed: true as const };
      },
    }),
    defineRoute({
      method: 'POST', path: '/v1/pools', operationId: 'createPool', tag: 'pools', summary: 'Create a pool from its spec: answers 202 with the task that provisions it',
      body: PoolSpecInputSchema, bodyName: 'PoolSpec', status: 202, response: TaskAcceptedSchema, responseName: 'TaskAccepted', errors: [404, 409, 501, 507],
      // the engine validates the spec (cross-field checks, what it names, capacity) before it makes anything
      handler: ({ body }) => engine(provision).createPool(body),
    }),
    defineRoute({
      method: 'GET', path: '/v1/pools', operationId: 'listPools', tag: 'pools', summary: 'Pools with their children counted per state',
      status: 200, response: z.array(PoolSummarySchema), responseName: 'PoolList', errors: [501],
      handler: () => engine(provision).listPools(),
    }),
    defineRoute({
      method: 'GET', path: '/v1/pools/{name}', operationId: 'getPool', tag: 'pools', summary: 'One pool: spec, children, counts per state, replica',
      params: NameParams, status: 200, response: PoolDetailSchema, responseName: 'PoolDetail', errors: [404, 501],
      handler: ({ params }) => engine(provision).getPool(params.name),
    }),
    defineRoute({
      method: 'PATCH', path: '/v1/pools/{name}', operationId: 'resizePool', tag: 'pools', summary: 'Resize a pool to `max` children: a task',
      params: NameParams, body: ResizeRequestSchema, bodyName: 'ResizeRequest', status: 202, response: TaskAcceptedSchema, responseName: 'TaskAccepted', errors: [404, 409, 501, 507],
      handler: async ({ params, body }) => ({ ...(await engine(provision).resizePool(params.name, body)), pool: params.name }),
    }),
    defineRoute({
      method: 'DELETE', path: '/v1/pools/{name}', operationId: 'removePool', tag: 'pools', summary: 'Remove a pool and its children: a task (its replica stays for reuse)',
      params: NameParams, status: 202, response: TaskAcceptedSchema, responseName: 'TaskAccepted', errors: [404, 409, 501],
      handler: async ({ params }) => ({ ...(await engine(provision).removePool(params.name)), pool: params.name }),
    }),
    defineRoute({
      method: 'GET', path: '/v1/replicas', operationId: 'listReplicas', tag: 'replicas', summary: 'The replica map: image version + phase-1 digest + host + datastore → replica',
      status: 200, response: z.array(ReplicaViewSchema), responseName: 'ReplicaList', errors: [501],
      handler: () => engine(provision).listReplicas(),
    }),
    defineRoute({
      method: 'DELETE', path: '/v1/replicas/{id}', operationId: 'removeReplica', tag: 'replicas', summary: 'Remove a replica no pool uses, with its templates and files (refused while a pool uses it)',
      params: z.strictObject({ id: z.string().regex(/^[0-9a-f]{12}$/, 'must be a replica id (12 hex digits)') }),
      status: 200, response: z.object({ id: z.string(), templates: z.array(z.string()) }), responseName: 'ReplicaRemoved', errors: [404, 409, 501, 502],
      handler: async ({ params }) => {
        // another host's replica: its files are there, and its agent removes it (docs/jobs.md)
        const host = await remoteHostOfReplica(deps, params.id);
        if (host) return (await sendHostJob(deps, host, { op: 'replica-rm', replica: params.id })) as { id: string; templates: string[] };
        return engine(provision).removeReplica(params.id);
      },
    }),
  ];
}
