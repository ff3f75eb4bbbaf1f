import { defineStateMachine } from './machine.js';

/**
 * Life of a pool (src/provision/):
 * - `provisioning`: a task converges it on its spec — phase 1 and the replica when there is none yet, the replica's
 *   template, then children forked (up-front) or registered (on-demand), spares topped up, or a resize.
 * - `ready`: every child the spec asks for is there; powered on, claimed and refreshed children change as users work.
 * - `failed`: the last task stopped at an error (`stopOnError`); the pool is consistent and a resize or rm may follow.
 * - `deleting`: its children are destroyed, then the record (the replica stays for other pools).
 * provisioning and deleting carry their owner (the server running the task); a server that starts runs the task
 * again in resume mode.
 */
export const POOL_STATES = ['provisioning', 'ready', 'failed', 'deleting'] as const;
export type PoolState = (typeof POOL_STATES)[number];

export const poolStateMachine = defineStateMachine<PoolState>({
  resource: 'pool',
  errorCode: 'VMFORK_POOL_STATE',
  table: {
    provisioning: ['ready', 'failed', 'deleting'],
    ready: ['provisioning', 'deleting'],
    failed: ['provisioning', 'deleting'],
    deleting: ['deleting'],
  },
  transitional: ['provisioning', 'deleting'],
});
