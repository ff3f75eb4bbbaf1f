/**
 * Pools provisioned the patent's way (docs/patent-flow in shared notes, issue 7): the pool spec, the tasks that run
 * pool operations in the background, and this host's datastores.
 */
export { formatName, parseNamePattern, type NamePattern } from './naming.js';
export {
  applyPoolDefaults,
  canonicalJson,
  canonicalSize,
  invalidSpec,
  parsePoolSpec,
  parsePoolSpecText,
  phase1Digest,
  poolChildNames,
  zodProblems,
  type PoolSpec,
  type SpecProblem,
} from './pool-spec.js';
export { CommonHookSchema, HOOK_DIR, labelSchema, PerChildHookSchema, PoolSpecInputSchema, type PoolSpecInput } from './pool-spec-schema.js';
export { REDACTED, redactSecrets } from './secrets.js';
export { cancelTask, drainTasks, recordTaskEvent, startTask } from './task-engine.js';
export { followTask, getTaskView, listTaskViews, waitForTask, type FollowOptions } from './task-follow.js';
export { recoverTasks, type RecoveredTask } from './task-recovery.js';
export type { ChildProgress, TaskContext, TaskDeps, TaskRequest, TaskRunner, TaskRunners } from './task-types.js';
export { ChildProgressSchema, TaskErrorSchema, TaskEventSchema, TaskViewSchema, taskEventView, taskView, type TaskEvent, type TaskView } from './task-view.js';
export { datastorePath, DEFAULT_DATASTORE, DatastoreViewSchema, HostViewSchema, listHosts, registerLocalHost, requireDatastore, type HostView } from './hosts.js';
export { checkPoolRefs } from './pool-refs.js';
export {
  PoolDetailSchema,
  PoolSummarySchema,
  ReplicaViewSchema,
  ResizeRequestSchema,
  TaskAcceptedSchema,
  type PoolDetail,
  type PoolSummary,
  type ReplicaView,
  type ResizeRequest,
  type TaskAccepted,
} from './pool-views.js';
export { diskLayoutOf, ensureReplica, healReplica, removeReplica, replicaDisks, replicaKey, type ReplicaDisk } from './replicas.js';
export { convergePool, poolSpecOf, targetActive, type ConvergeResult } from './pool-converge.js';
export { ensureReplicaTemplate, poolShape, replicaTemplateName } from './pool-template.js';
export { hashMachinePassword, hooksRunner, machinePasswordMatches, newMachinePassword, poolCustomizer } from './phase2.js';
export { powerOff, powerOn, type PowerResult } from './pool-power.js';
export { checkPoolFits } from './pool-checks.js';
export { createProvisionService, POOL_TASKS } from './service.js';
export { sshArgv, sshTarget, type SshTarget } from './ssh.js';
export { demoPoolSpec, runDemoPool, type DemoPoolReport } from './demo-pool.js';
