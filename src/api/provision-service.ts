import type { CheckpointView, ClaimRequest, ClaimResult, ClaimView, PoolDetail, PoolSummary } from '../pool/index.js';
import type { ReplicaView } from '../replica/index.js';
import type { TaskAccepted, TaskRunners } from '../task/index.js';

/**
 * The provisioning engine as the API server drives it (issue 7). The server validates requests (spec shape and
 * cross-field checks, referenced image / network / datastore) before calling it; each long operation starts a task
 * (`startTask` in src/provision) and answers with its id at once. Errors are VmforkErrors: their registry status
 * becomes the HTTP status. The views are zod schemas in src/provision/pool-views.ts: the API documents them in
 * OpenAPI and its tests validate every response against them.
 */
export interface ProvisionService {
  /** Starts creating a pool (phase 1 or a reused replica, then its children). VMFORK_POOL_EXISTS for a taken name. */
  createPool(spec: unknown): Promise<TaskAccepted>;
  listPools(): Promise<PoolSummary[]>;
  /** One pool with its children's counts per VM state and their names. */
  getPool(name: string): Promise<PoolDetail>;
  /** Grows or shrinks a pool to `max` children. Every operation on a pool runs in its queue: `queuedBehind` names the one it waits for. */
  resizePool(name: string, request: { max: number }): Promise<TaskAccepted>;
  /** Removes a pool's children and the pool (its replica stays for reuse). */
  removePool(name: string): Promise<TaskAccepted>;
  /** Powers a child on (a pre-registered on-demand child is forked). */
  powerOn(vm: string): Promise<TaskAccepted>;
  powerOff(vm: string): Promise<TaskAccepted>;
  /** Hands out a ready child (a spare, or one forked for the claim); VMFORK_POOL_EXHAUSTED when none is left. */
  claim(pool: string, request: ClaimRequest): Promise<ClaimResult>;
  /** Gives a claimed child back: a task that refreshes it. VMFORK_VM_NOT_CLAIMED for one not claimed. */
  releaseVm(vm: string): Promise<TaskAccepted>;
  /** Pushes a new image or spec to a pool (a task): the new replica while the old serves, then its children moved. */
  updatePool(name: string, spec: unknown, request?: { minReady?: number; mode?: 'at-release' | 'force'; graceSeconds?: number }): Promise<TaskAccepted>;
  /** Who holds what: claimed and releasing children, of every pool or one. */
  listClaims(pool?: string): Promise<ClaimView[]>;
  /** The server's claim clock (TTLs, releases a crash cut off); the server stops it when it closes. */
  startClaimSweeper?(everyMs?: number): { stop(): void };
  /** Queues a converge of each placed pool that has a child on a lost host not yet replaced; the pools queued. */
  rebuildLostCapacity?(): Promise<string[]>;
  /** Checkpoints a running VM (issue 12 item 7): a task in its queue; the label is fixed when it is accepted. */
  checkpointVm(vm: string, request: { label?: string; memory?: boolean }): Promise<TaskAccepted & { label: string }>;
  /** Reverts a VM to one of its checkpoints, without a boot: a task. VMFORK_CHECKPOINT_NOT_FOUND for an unknown label. */
  revertVm(vm: string, request: { to: string }): Promise<TaskAccepted>;
  listCheckpoints(vm: string): Promise<CheckpointView[]>;
  /** Promotes a running linked clone to a full clone (issue 12 item 8): checked at once (state, datastore, room), then a task. */
  promoteVm(vm: string, request: { datastore?: string; rateMiBs?: number }): Promise<TaskAccepted>;
  listReplicas(): Promise<ReplicaView[]>;
  /** Removes a replica no pool uses, with its templates and files; VMFORK_REPLICA_IN_USE while a pool uses it. */
  removeReplica(id: string): Promise<{ id: string; templates: string[] }>;
  /** Runners by task kind: at start the server resumes tasks a dead server left with them (`recoverTasks`). */
  readonly runners: TaskRunners;
}
