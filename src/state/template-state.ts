import { defineStateMachine } from './machine.js';

/**
 * Life of a template:
 * - `creating`: record written; the parent's overlay is being made and its address leased.
 * - `booting`: the parent VM cold-boots (file-backed shared RAM) until its agent answers.
 * - `preparing`: per-machine files removed, NIC down, `sync` in the guest.
 * - `freezing`: stop → device-state-only save (x-ignore-shared) → quit; files hashed and made read-only.
 * - `ready`: frozen; children can be forked. Its RAM, state and disk files never change again.
 * - `failed`: creation failed and could not be rolled back whole; `last_error` says why. Only `template rm` remains.
 * - `deleting`: being removed (refused while children use it), or a failed creation being rolled back.
 */
export const TEMPLATE_STATES = ['creating', 'booting', 'preparing', 'freezing', 'ready', 'failed', 'deleting'] as const;
export type TemplateState = (typeof TEMPLATE_STATES)[number];

export const templateStateMachine = defineStateMachine<TemplateState>({
  resource: 'template',
  errorCode: 'VMFORK_TEMPLATE_STATE',
  table: {
    creating: ['booting', 'failed', 'deleting'],
    booting: ['preparing', 'failed', 'deleting'],
    preparing: ['freezing', 'failed', 'deleting'],
    freezing: ['ready', 'failed', 'deleting'],
    ready: ['deleting'],
    failed: ['deleting'],
    deleting: ['deleting'],
  },
  transitional: ['creating', 'booting', 'preparing', 'freezing', 'deleting'],
});

/** States of a template whose creation is still under way. */
export const TEMPLATE_BUSY_STATES: readonly TemplateState[] = ['creating', 'booting', 'preparing', 'freezing'];
