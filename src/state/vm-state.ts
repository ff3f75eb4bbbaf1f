import { defineStateMachine } from './machine.js';

/**
 * Life of one VM record (a cold-booted VM, a template's parent, or a forked child):
 * - `creating`: record written (name, address and spec reserved), disk overlay being made; nothing runs yet.
 * - `registered`: a pool's pre-registered child — name, MAC, address and overlays reserved, powered off, never run;
 *   powering it on forks it.
 * - `warm`: a QEMU launched at `-incoming defer` for a template (MAC, vmgenid, uuid assigned) waiting for a fork
 *   to take it — a template's warm process, or a pool's registered child kept warm; only `migrate-incoming` +
 *   `cont` remain.
 * - `starting`: QEMU launched, waiting for the guest agent (cold boot).
 * - `forking`: QEMU launched with `-incoming defer`, loading the template's device state, then taking its identity.
 * - `running`: the guest runs and its agent answered.
 * - `paused`: QEMU is stopped at an instruction (a template parent at its cut, debugging).
 * - `stopping`: shutdown asked; waiting for QEMU to exit.
 * - `stopped`: no QEMU process; the overlay is kept.
 * - `failed`: a step failed or QEMU died unexpectedly; `last_error` says why.
 * - `destroying`: tearing down (destroy, or the rollback of a failed create); retried until the record is gone.
 * - `refreshing`: a pool child given back: its QEMU is gone and its overlays are being made anew from the pool's
 *   template, keeping its name, MAC and address; it becomes `registered` and is forked again at once.
 * - `unknown`: its host is lost (its agent's heartbeats stopped): whether its QEMU still runs cannot be known from
 *   here. The host's agent, back, finds out and moves it on (running, paused, warm, stopped or failed).
 */
export const VM_STATES = ['creating', 'registered', 'warm', 'starting', 'forking', 'running', 'paused', 'stopping', 'stopped', 'failed', 'destroying', 'refreshing', 'unknown'] as const;
export type VmState = (typeof VM_STATES)[number];

/**
 * What a VM record is: a cold-booted VM, a template's parent (while it runs), a child forked from a template, a
 * pool's internal clone (phase 1: customized with reboots, then copied into a replica and removed), or a warm
 * process of a template (a QEMU at `-incoming defer` waiting for a fork; it becomes a child when a fork takes it).
 */
export const VM_ROLES = ['vm', 'template', 'child', 'clone', 'warm'] as const;
export type VmRole = (typeof VM_ROLES)[number];

export const vmStateMachine = defineStateMachine<VmState>({
  resource: 'VM',
  errorCode: 'VMFORK_VM_STATE',
  table: {
    creating: ['registered', 'warm', 'starting', 'forking', 'failed', 'destroying'],
    // a pool keeps some registered children warm: launched at -incoming defer, so a claim only resumes them
    registered: ['warm', 'forking', 'destroying'],
    // a warm process whose QEMU died is failed; one taken by a fork loads the template's state
    warm: ['forking', 'failed', 'destroying', 'unknown'],
    starting: ['running', 'failed', 'stopping', 'destroying'],
    forking: ['running', 'failed', 'destroying'],
    running: ['paused', 'stopping', 'stopped', 'failed', 'destroying', 'refreshing', 'unknown'],
    paused: ['running', 'stopping', 'stopped', 'failed', 'destroying', 'refreshing', 'unknown'],
    stopping: ['stopped', 'failed', 'destroying'],
    stopped: ['starting', 'destroying', 'refreshing'],
    failed: ['starting', 'destroying', 'refreshing'],
    refreshing: ['registered', 'failed', 'destroying'],
    // a lost host's VM: its agent, back, says what became of it (fenced by the host's generation: docs/jobs.md)
    unknown: ['running', 'paused', 'warm', 'stopped', 'failed', 'destroying'],
    // a destroy whose owner died halfway is taken over and run again
    destroying: ['destroying'],
  },
  transitional: ['creating', 'starting', 'forking', 'stopping', 'destroying', 'refreshing'],
});

/** States in which a QEMU process is expected to exist. */
export const LIVE_STATES: readonly VmState[] = ['warm', 'starting', 'forking', 'running', 'paused', 'stopping'];
