import { scriptPreamble, stepFunctionName } from './shell.js';
import { IDENTITY_STEPS } from './pipeline.js';
import type { IdentityStep, NormalizedIdentity } from './types.js';

/** Host entropy for one apply: mixed into the CRNG, and the next boot's random seed. */
export interface IdentityEntropy {
  rng: Buffer;
  seed: Buffer;
}

/** The guest-exec request: program, argv (no secrets: the guest's `ps` shows it), stdin (entropy, host clock). */
export interface IdentityExec {
  path: '/bin/sh';
  args: string[];
  input: string;
}

/** Name of the closing block of guest-wide facts (not a step). */
export const GUEST_BLOCK = 'guest';

/**
 * The whole pipeline as one sh script: one function per step, run in order by `run_step`, then the guest-wide
 * facts, then the steps' epilogues (background service restarts they deferred). One guest-exec instead of one per step: under TCG each guest-exec round trip costs tens of ms.
 */
export function buildIdentityScript(identity: NormalizedIdentity, steps: readonly IdentityStep[] = IDENTITY_STEPS): string {
  const parts = [scriptPreamble()];
  for (const step of steps) {
    parts.push(`${stepFunctionName(step.name)}() {\n${step.script(identity)}\n}`);
    if (step.epilogue) parts.push(`${stepFunctionName(step.name)}_epilogue() {\n${step.epilogue(identity)}\n}`);
  }
  for (const step of steps) parts.push(`run_step ${step.name} ${stepFunctionName(step.name)}`);
  // the guest facts before the epilogues: nothing an epilogue starts in the background can change them
  parts.push(`STEP=${GUEST_BLOCK}`, 'read_first v /proc/sys/kernel/random/boot_id; fact boot_id "$v"');
  for (const step of steps) if (step.epilogue) parts.push(`run_step ${step.name} ${stepFunctionName(step.name)}_epilogue epilogue_`);
  parts.push('flush_unit_jobs');
  parts.push('exit 0');
  return `${parts.join('\n')}\n`;
}

/**
 * Bytes as `\NNN` octal escapes, which the shell's builtin printf turns back into bytes (NUL included): binary
 * goes from stdin to /dev/urandom or a file without any exec, so no decoder process ever sees it.
 */
export function octalEscapes(bytes: Buffer): string {
  return Array.from(bytes, (b) => `\\${b.toString(8).padStart(3, '0')}`).join('');
}

/**
 * Stdin carries three lines: the CRNG entropy and the seed entropy (octal escapes), then the host's wall clock in
 * epoch ns (19 digits), which the clock step sets. The script reads them into unexported variables; argv carries
 * only the script, which is the same for the same identity. Build it right before sending: the stamp ages from here.
 */
export function buildIdentityExec(identity: NormalizedIdentity, entropy: IdentityEntropy, hostClockNs: bigint, steps?: readonly IdentityStep[]): IdentityExec {
  return {
    path: '/bin/sh',
    args: ['-c', buildIdentityScript(identity, steps)],
    input: `${octalEscapes(entropy.rng)}\n${octalEscapes(entropy.seed)}\n${hostClockNs}\n`,
  };
}
