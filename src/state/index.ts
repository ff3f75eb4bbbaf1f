/** Every resource's states and its one transition table; the store writes state only through them. */
export { defineStateMachine, type StateMachine, type StateMachineDefinition, type TransitionTable } from './machine.js';
export { LIVE_STATES, vmStateMachine, type VmRole, type VmState } from './vm-state.js';
export { TEMPLATE_BUSY_STATES, templateStateMachine, type TemplateState } from './template-state.js';
export { networkStateMachine, type NetworkState } from './network-state.js';
export { imageStateMachine, type ImageState } from './image-state.js';
export { TASK_FINAL_STATES, taskStateMachine, type TaskState } from './task-state.js';
export { poolStateMachine, type PoolState } from './pool-state.js';
export { replicaStateMachine, type ReplicaState } from './replica-state.js';
export type { Actor, Owner, OwnerOp } from './owner.js';
