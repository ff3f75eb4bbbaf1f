import { defineStateMachine } from '../util/state-machine.js';

/**
 * Life of a template:
 * - `creating`: record written; the parent's overlay is being made.
 * - `booting`: the parent VM cold-boots (file-backed shared RAM) until its agent answers.
 * - `preparing`: per-machine files removed, NIC down, `sync` in the guest.
 * - `freezing`: stop → device-state-only save (x-ignore-shared) → quit; files hashed and made read-only.
 * - `ready`: frozen; children can be forked. Its RAM, state and disk files never change again.
 * - `failed`: creation failed; `last_error` says why. Only `template rm` remains.
 * - `deleting`: being removed (refused while children use it); retried after a crash.
 */
export type TemplateState = 'creating' | 'booting' | 'preparing' | 'freezing' | 'ready' | 'failed' | 'deleting';

export const templateStateMachine = defineStateMachine<TemplateState>('template', {
  creating: ['booting', 'failed', 'deleting'],
  booting: ['preparing', 'failed', 'deleting'],
  preparing: ['freezing', 'failed', 'deleting'],
  freezing: ['ready', 'failed', 'deleting'],
  ready: ['deleting'],
  failed: ['deleting'],
  deleting: ['deleting'],
});

export const TEMPLATE_BUSY_STATES: readonly TemplateState[] = ['creating', 'booting', 'preparing', 'freezing'];
