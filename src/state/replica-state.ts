import { defineStateMachine } from './machine.js';

/**
 * Life of a replica (a pool's customized clone, copied whole onto one datastore of one host, then frozen into a
 * template; the replica map keys it by image version + phase-1 digest + host + datastore):
 * - `creating`: phase 1 runs on the internal clone, then its disks are copied (no backing file) and the template
 *   is made; a replica whose creator died is rolled back by the next vmfork command.
 * - `ready`: protected — its files are read-only and it cannot be removed while any pool or template uses it.
 * - `deleting`: its template and files are being removed.
 */
export const REPLICA_STATES = ['creating', 'ready', 'deleting'] as const;
export type ReplicaState = (typeof REPLICA_STATES)[number];

export const replicaStateMachine = defineStateMachine<ReplicaState>({
  resource: 'replica',
  errorCode: 'VMFORK_REPLICA_STATE',
  table: {
    creating: ['ready', 'deleting'],
    ready: ['deleting'],
    deleting: ['deleting'],
  },
  transitional: ['creating', 'deleting'],
});
