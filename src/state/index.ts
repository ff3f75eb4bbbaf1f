/**
 * Every resource's states and its one transition table; the store writes state only through them. Each state list is
 * a readonly tuple its union type is derived from (and the API's zod enums are built from), so a state is named once.
 */
export { defineStateMachine, type StateMachine, type StateMachineDefinition, type TransitionTable } from './machine.js';
export { LIVE_STATES, VM_ROLES, VM_STATES, vmStateMachine, type VmRole, type VmState } from './vm-state.js';
export { TEMPLATE_BUSY_STATES, TEMPLATE_STATES, templateStateMachine, type TemplateState } from './template-state.js';
export { NETWORK_STATES, networkStateMachine, type NetworkState } from './network-state.js';
export { IMAGE_STATES, imageStateMachine, type ImageState } from './image-state.js';
export { CHILD_PROGRESS_STATES, TASK_FINAL_STATES, TASK_STATES, taskStateMachine, type ChildProgressState, type TaskState } from './task-state.js';
export { POOL_STATES, poolStateMachine, type PoolState } from './pool-state.js';
export { REPLICA_STATES, replicaStateMachine, type ReplicaState } from './replica-state.js';
export { CLAIM_STATES, claimStateMachine, type ClaimState } from './claim-state.js';
export { PUSH_STATES, pushStateMachine, type PushState } from './push-state.js';
export { HOST_STATES, hostStateMachine, type HostState } from './host-state.js';
export type { Actor, Owner, OwnerOp } from './owner.js';
