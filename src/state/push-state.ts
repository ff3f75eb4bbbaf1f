import { defineStateMachine } from './machine.js';

/**
 * An image or spec pushed to a pool (src/pool/push.ts), recorded on the pool:
 * - `building`: phase 1 of the new spec makes the new replica and template while the old ones keep serving;
 * - `replacing`: the pool forks from the new template; its children on the old one are refreshed, one at a time,
 *   never leaving fewer than min-ready ready;
 * - `waiting`: only claimed children are left on the old template; each moves at its release (`--at-release`);
 * - `done`: every child is on the new template, and the old replica is gone if nothing else uses it;
 * - `failed`: it stopped at its first error; the pool serves on the old replica and template.
 */
export const PUSH_STATES = ['building', 'replacing', 'waiting', 'done', 'failed'] as const;
export type PushState = (typeof PUSH_STATES)[number];

export const pushStateMachine = defineStateMachine<PushState>({
  resource: 'push',
  errorCode: 'VMFORK_POOL_STATE',
  table: {
    building: ['replacing', 'done', 'failed'],
    replacing: ['waiting', 'done', 'failed'],
    waiting: ['done', 'failed'],
    done: [],
    failed: [],
  },
  transitional: ['building', 'replacing'],
});
