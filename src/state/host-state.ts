import { defineStateMachine } from './machine.js';

/**
 * Life of a host as its agent reports it (docs/hosts.md):
 * - `up`: its agent registered and its heartbeats are on time;
 * - `lost`: its heartbeats stopped (the agent, the machine or the network died); what it ran is unknown, and it is
 *   fenced: a restarted agent takes a new generation, so work handed out under the old one is never run twice;
 * - `down`: its agent stopped cleanly (SIGTERM) and said so.
 * Only an agent moves its own host to `up` (a start, or a return after `lost`); anyone on the store may find it
 * `lost`. No state is transitional: a host rests in each, with no owner to heal.
 */
export const HOST_STATES = ['up', 'lost', 'down'] as const;
export type HostState = (typeof HOST_STATES)[number];

export const hostStateMachine = defineStateMachine<HostState>({
  resource: 'host',
  errorCode: 'VMFORK_HOST_STATE',
  table: {
    up: ['up', 'lost', 'down'],
    lost: ['up', 'down'],
    down: ['up'],
  },
  transitional: [],
});
