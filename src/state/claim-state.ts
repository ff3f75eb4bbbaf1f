import { defineStateMachine } from './machine.js';

/**
 * Whether a pool child is a user's (docs/lifecycle.md), beside its VM state:
 * - `unclaimed`: a spare (running) or a registered child, free to be claimed;
 * - `claimed`: handed to a user (or reserved for one while its fork runs); `claimed_by`, `claimed_at` and the TTL's
 *   `claim_expires_at` say whose and until when;
 * - `releasing`: given back (or, unclaimed, taken by an image push); its refresh (re-fork from the pool's
 *   template, same name, MAC and address) runs, and no claim can take it until it is a spare again.
 * Every move is a compare-and-set on the row (store/claims-repo.ts): of two claims racing for one spare, one wins.
 */
export const CLAIM_STATES = ['unclaimed', 'claimed', 'releasing'] as const;
export type ClaimState = (typeof CLAIM_STATES)[number];

export const claimStateMachine = defineStateMachine<ClaimState>({
  resource: 'claim',
  errorCode: 'VMFORK_VM_NOT_CLAIMED',
  table: {
    // an image push refreshing a spare holds it out of claims the same way a release does
    unclaimed: ['claimed', 'releasing'],
    // a claim whose fork failed gives the child back at once; a release refreshes it first
    claimed: ['releasing', 'unclaimed'],
    // a refresh that failed leaves the child failed or gone: its claim ends either way
    releasing: ['unclaimed'],
  },
  transitional: ['releasing'],
});
