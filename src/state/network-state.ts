import { defineStateMachine } from './machine.js';

/**
 * Life of a network record:
 * - `creating`: record written (its name and namespace reserved); the namespace and bridge are being built.
 * - `ready`: the host side exists (or is rebuilt on next use after a host reboot); VMs may lease addresses.
 * - `deleting`: no new lease is handed out; the namespace is being removed, then the record.
 */
export const NETWORK_STATES = ['creating', 'ready', 'deleting'] as const;
export type NetworkState = (typeof NETWORK_STATES)[number];

export const networkStateMachine = defineStateMachine<NetworkState>({
  resource: 'network',
  errorCode: 'VMFORK_NETWORK_STATE',
  table: {
    creating: ['ready', 'deleting'],
    ready: ['deleting'],
    deleting: ['deleting'],
  },
  transitional: ['creating', 'deleting'],
});
