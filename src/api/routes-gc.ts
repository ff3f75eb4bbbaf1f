import { z } from 'zod';
import { GcReportSchema, runGc } from '../gc/index.js';
import type { VmDeps } from '../vm/index.js';
import { defineRoute, type AnyRoute } from './route.js';

const GcRequest = z.strictObject({ dryRun: z.boolean().optional() }).optional();

/** Garbage collection on demand (the server also runs it at start and every hour). */
export function gcRoutes(deps: VmDeps): AnyRoute[] {
  return [
    defineRoute({
      method: 'POST', path: '/v1/gc', operationId: 'runGc', tag: 'gc', summary: 'Find what crashes left in the data dir and remove it (or, with dryRun, only list it)',
      body: GcRequest, bodyName: 'GcRequest', status: 200, response: GcReportSchema, responseName: 'GcReport',
      handler: async ({ body }) => runGc(deps, { dryRun: body?.dryRun === true }),
    }),
  ];
}
