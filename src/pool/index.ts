/**
 * Pools provisioned the patent's way (shared notes: patent-flow): the pool spec, converging a pool on it (replica,
 * template, children forked or registered), power operations on its children, capacity checks, and the service
 * the API drives, every operation a task in the pool's queue.
 */
export { invalidSpec, parsePoolSpec, parsePoolSpecText, zodProblems, type PoolSpec, type SpecProblem } from './spec.js';
export { labelSchema, PoolSpecInputSchema } from './spec-schema.js';
export { PoolDetailSchema, PoolSummarySchema, ResizeRequestSchema, type PoolChild, type PoolDetail, type PoolSummary, type PoolTask, type ResizeRequest } from './views.js';
export type { ConvergeResult } from './converge.js';
export { childFailure, type ChildFailure } from './converge-result.js';
export { createProvisionService } from './service.js';
export { DEFAULT_DISK_OVERCOMMIT, diskOvercommit, setDiskOvercommit } from './disk-budget.js';
export { PUSH_MODES, PushViewSchema, type PushMode, type PushView } from './push.js';
export { ClaimRequestSchema, ClaimResultSchema, ClaimViewSchema, MAX_CLAIM_WAIT_SECONDS, MAX_TTL_SECONDS, type ClaimRequest, type ClaimResult, type ClaimView } from './claims.js';
export { CHECKPOINT_TASKS, CheckpointViewSchema, type CheckpointRequest, type CheckpointView } from './checkpoint-service.js';
export { PROMOTE_TASKS } from './promote-service.js';
export { MEMORY_SHARE, vmHolds } from './placement.js';
