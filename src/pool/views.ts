import { z } from 'zod';
import { POOL_STATES, TASK_STATES, VM_STATES } from '../state/index.js';
import { PushViewSchema } from './push.js';
import { PoolSpecInputSchema, PROVISIONING_MODES } from './spec-schema.js';
import { MAX_POOL_SIZE, wholeNumber } from './spec-limits.js';

/**
 * What the provisioning service answers with: the contract between the API (which documents these schemas in
 * OpenAPI and validates every test response against them) and the engine that implements `ProvisionService`.
 * Adding a field to a view means adding it here.
 */


/** The task a pool's page shows (src/pool/last-task.ts): the one running in the pool's queue, else its newest. */
export const PoolTaskSchema = z.object({
  id: z.string(),
  kind: z.string(),
  state: z.enum(TASK_STATES),
  percent: z.number().int().min(0).max(100),
  step: z.string().nullable(),
});
export type PoolTask = z.infer<typeof PoolTaskSchema>;

export const PoolSummarySchema = z.object({
  name: z.string(),
  /** The pool's own state (the engine's pool state machine). */
  state: z.enum(POOL_STATES),
  image: z.string(),
  provisioning: z.enum(PROVISIONING_MODES),
  persistent: z.boolean(),
  size: z.object({ max: z.number().int(), min: z.number().int(), spares: z.number().int(), warm: z.number().int() }),
  hostId: z.string(),
  datastore: z.string(),
  /** Children per VM state (`running: 8, registered: 2`). */
  counts: z.partialRecord(z.enum(VM_STATES), z.number().int().min(0)),
  createdAt: z.string(),
  /** The replica its children fork from, once phase 1 and the copy are done. */
  replica: z.string().nullable(),
  /** Any kind (create, converge, claim, power, release…): null before the first. */
  lastTask: PoolTaskSchema.nullable(),
});
export type PoolSummary = z.infer<typeof PoolSummarySchema>;

/** One child as a pool's detail lists it. */
export const PoolChildSchema = z.object({
  name: z.string(),
  state: z.enum(VM_STATES),
  host: z.string(),
  /** Its address lease (kept across refreshes; a registered child has one before its fork). */
  ip: z.string().nullable(),
  /** Who holds its claim (the claim's user; null when unclaimed or claimed without one). */
  claimedBy: z.string().nullable(),
  claimedAt: z.string().nullable(),
  /** Fork → ready of its last fork, identity and the pool's phase 2 included; null before its first (or if unrecorded). */
  secondsToReady: z.number().min(0).nullable(),
  /** Reboots on its way to ready, from its fork's identity report: 0 when its boot_id was its template's; null: unknown. */
  reboots: z.number().int().min(0).nullable(),
  /** When its last fork made it ready (a refresh forks it again, so this changes); before a first fork, when it was registered. */
  createdAt: z.string(),
});
export type PoolChild = z.infer<typeof PoolChildSchema>;

export const PoolDetailSchema = PoolSummarySchema.extend({
  /** The spec as accepted, every default applied. */
  spec: PoolSpecInputSchema,
  vms: z.array(PoolChildSchema),
  /** Children per host (a pool placed over the fleet's hosts has them on several; one host's pool on `local`). */
  hosts: z.record(z.string(), z.number().int().min(0)),
  /** The last task run on the pool (create, resize, remove). */
  lastTaskId: z.string().nullable(),
  /** The template the pool forks from now. */
  template: z.string().nullable(),
  /** Children per template they stand on: old and new during an image push. */
  templates: z.record(z.string(), z.number().int().min(0)),
  /** The last image or spec push (`pool update`), or null. */
  push: PushViewSchema.nullable(),
});
export type PoolDetail = z.infer<typeof PoolDetailSchema>;


export const ResizeRequestSchema = z.strictObject({ max: wholeNumber(1, MAX_POOL_SIZE) });
export type ResizeRequest = z.infer<typeof ResizeRequestSchema>;
