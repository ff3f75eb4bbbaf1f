import { defineStateMachine } from '../util/state-machine.js';

/**
 * Life of one VM record (a cold-booted VM, a template's parent, or a forked child):
 * - `creating`: record written, overlay being made; nothing runs yet.
 * - `starting`: QEMU launched, waiting for the guest agent (cold boot).
 * - `forking`: QEMU launched with `-incoming defer`, loading the template's device state.
 * - `running`: the guest runs and its agent answered.
 * - `paused`: QEMU is stopped at an instruction (template cut, debugging).
 * - `stopping`: shutdown asked; waiting for QEMU to exit.
 * - `stopped`: no QEMU process; the overlay is kept.
 * - `failed`: a step failed or QEMU died unexpectedly; `last_error` says why.
 * - `destroying`: tearing down; retried until the record is deleted.
 */
export type VmState = 'creating' | 'starting' | 'forking' | 'running' | 'paused' | 'stopping' | 'stopped' | 'failed' | 'destroying';

export const vmStateMachine = defineStateMachine<VmState>('VM', {
  creating: ['starting', 'forking', 'failed', 'destroying'],
  starting: ['running', 'failed', 'stopping', 'destroying'],
  forking: ['running', 'failed', 'destroying'],
  running: ['paused', 'stopping', 'stopped', 'failed', 'destroying'],
  paused: ['running', 'stopping', 'stopped', 'failed', 'destroying'],
  stopping: ['stopped', 'failed', 'destroying'],
  stopped: ['starting', 'destroying'],
  failed: ['starting', 'destroying'],
  // a destroy that crashed halfway is simply run again
  destroying: ['destroying'],
});

/** States in which a QEMU process is expected to exist. */
export const LIVE_STATES: readonly VmState[] = ['starting', 'forking', 'running', 'paused', 'stopping'];
