import { z } from 'zod';
import { ClaimRequestSchema, ClaimResultSchema, ClaimViewSchema, PoolSpecInputSchema, PUSH_MODES } from '../pool/index.js';
import { TaskAcceptedSchema } from '../task/index.js';
import { getVmReconciled, type VmDeps } from '../vm/index.js';
import type { ProvisionService } from './provision-service.js';
import { defineRoute, type AnyRoute } from './route.js';
import { engine } from './routes-provision.js';
import { NameParams } from './routes-resources.js';

/** A pool's life after creation: claims (a user takes a ready child and gives it back) and image pushes (docs/lifecycle.md). */
export function claimRoutes(deps: VmDeps, provision: ProvisionService | undefined): AnyRoute[] {
  return [
    defineRoute({
      method: 'POST', path: '/v1/pools/{name}/claim', operationId: 'claimFromPool', tag: 'pools',
      summary: 'Claim a ready child: a spare at once, else a registered child forked for it; answers when it is ready (409 VMFORK_POOL_EXHAUSTED when none is left)',
      params: NameParams, body: ClaimRequestSchema, bodyName: 'ClaimRequest', status: 200, response: ClaimResultSchema, responseName: 'ClaimResult', errors: [404, 409, 501, 507],
      handler: ({ params, body }) => engine(provision).claim(params.name, body),
    }),
    defineRoute({
      method: 'POST', path: '/v1/vms/{name}/release', operationId: 'releaseVm', tag: 'vms',
      summary: 'Give a claimed child back: a task that refreshes it (same name, MAC and address; nothing of its last user)',
      params: NameParams, status: 202, response: TaskAcceptedSchema, responseName: 'TaskAccepted', errors: [404, 409, 501],
      handler: async ({ params }) => {
        await getVmReconciled(deps, params.name);
        return { ...(await engine(provision).releaseVm(params.name)), vm: params.name };
      },
    }),
    defineRoute({
      method: 'PUT', path: '/v1/pools/{name}', operationId: 'updatePool', tag: 'pools',
      summary: 'Push a new image or spec to a pool: a task that makes the new replica while the old serves, then moves the children (never below minReady)',
      params: NameParams, body: PoolSpecInputSchema, bodyName: 'PoolSpec',
      query: z.strictObject({
        minReady: z.coerce.number().int().min(0).optional().describe('never fewer ready children than this while children are replaced'),
        mode: z.enum(PUSH_MODES).optional().describe('claimed children: replaced at their release (default) or, force, after a notice and graceSeconds'),
        graceSeconds: z.coerce.number().int().min(0).max(86_400).optional().describe('force: how long users have after the notice (default 60)'),
      }),
      status: 202, response: TaskAcceptedSchema, responseName: 'TaskAccepted', errors: [404, 409, 501, 507],
      handler: async ({ params, body, query }) => ({ ...(await engine(provision).updatePool(params.name, body, query)), pool: params.name }),
    }),
    defineRoute({
      method: 'GET', path: '/v1/claims', operationId: 'listClaims', tag: 'pools', summary: 'Who holds which child, since when and until when; ?pool= for one pool',
      query: z.strictObject({ pool: z.string().optional().describe('only the claims of this pool') }),
      status: 200, response: z.array(ClaimViewSchema), responseName: 'ClaimList', errors: [501],
      handler: ({ query }) => engine(provision).listClaims(query.pool),
    }),
  ];
}
