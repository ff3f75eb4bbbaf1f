import { addressesIn, fact, factList } from './facts.js';
import type { IdentityOutput } from './facts.js';
import { parseIfInet6 } from './ipv6.js';
import { GUEST_BLOCK } from './script.js';
import { sshFingerprints } from './ssh-step.js';
import type { GuestFacts, IdentityStep, IdentityStepResult, StepFacts, VerifyContext } from './types.js';

const EMPTY: StepFacts = new Map();

/** What the script as a whole did, for steps that printed nothing (a syntax error, a killed shell). */
export interface ScriptOutcome {
  exitCode: number;
  stderr: string;
}

/**
 * Judges every step, in order, from what the guest printed. A step that printed no `rc` never ran; a non-zero
 * `rc` (or `epilogue_rc`) fails with the step's own stderr; otherwise the step's verify decides. Never stops
 * early: the report says which steps failed, not only the first.
 */
export function verifySteps(steps: readonly IdentityStep[], output: IdentityOutput, ctx: VerifyContext, script: ScriptOutcome): IdentityStepResult[] {
  return steps.map((step) => {
    const facts = output.get(step.name) ?? EMPTY;
    const result = (ok: boolean, detail?: string): IdentityStepResult => {
      const ms = Number(fact(facts, 'ms')) + Number(fact(facts, 'epilogue_ms') ?? 0);
      const r: IdentityStepResult = { step: step.name, ok };
      if (detail !== undefined) r.detail = detail;
      if (Number.isFinite(ms)) r.ms = ms;
      return r;
    };
    const rc = fact(facts, 'rc');
    if (rc === undefined) {
      const tail = script.stderr.trim().split('\n').slice(-3).join(' | ');
      return result(false, `the guest reported nothing for this step (script exit ${script.exitCode}${tail ? `: ${tail}` : ''})`);
    }
    if (rc !== '0') {
      const stderr = factList(facts, 'stderr').slice(-3).join(' | ');
      return result(false, `exited ${rc}${stderr ? `: ${stderr}` : ''}`);
    }
    const epilogueRc = fact(facts, 'epilogue_rc');
    if (epilogueRc !== undefined && epilogueRc !== '0') {
      const stderr = factList(facts, 'epilogue_stderr').slice(-3).join(' | ');
      return result(false, `epilogue exited ${epilogueRc}${stderr ? `: ${stderr}` : ''}`);
    }
    const unitRc = fact(facts, 'unit_job_rc');
    if (unitRc !== undefined && unitRc !== '0') {
      const stderr = factList(facts, 'unit_job_stderr').slice(-3).join(' | ');
      return result(false, `systemctl reload-or-restart exited ${unitRc}${stderr ? `: ${stderr}` : ''}`);
    }
    try {
      const verdict = step.verify(facts, ctx);
      return result(verdict.ok, verdict.detail);
    } catch (err) {
      return result(false, `verification error: ${(err as Error).message}`);
    }
  });
}

/** The guest's own view after the pipeline, from the facts its steps printed after changing things. */
export function guestFacts(output: IdentityOutput, clockOffsetMs: number, clockUncertaintyMs?: number): GuestFacts {
  const of = (step: string): StepFacts => output.get(step) ?? EMPTY;
  const guest: GuestFacts = {
    hostname: fact(of('hostname'), 'kernel') ?? '',
    machineId: fact(of('machine-id'), 'etc') ?? '',
    mac: fact(of('mac'), 'address') ?? '',
    bootId: fact(of(GUEST_BLOCK), 'boot_id') ?? '',
    clockOffsetMs,
  };
  if (clockUncertaintyMs !== undefined) guest.clockUncertaintyMs = clockUncertaintyMs;
  const ipv4Out = factList(of('ipv4'), 'out');
  const v4 = addressesIn(ipv4Out, 'inet')[0];
  if (v4) {
    const gateway = ipv4Out
      .filter((l) => l.startsWith('default'))
      .map((l) => /\bvia (\S+)/.exec(l)?.[1])
      .find((g) => g !== undefined);
    guest.ipv4 = gateway === undefined ? { ...v4 } : { ...v4, gateway };
  }
  const v6 = parseIfInet6(factList(of('ipv6-link-local'), 'll'))[0];
  if (v6) guest.ipv6LinkLocal = v6.address;
  return guest;
}

export function hostKeyFingerprints(output: IdentityOutput): string[] {
  return sshFingerprints(output.get('ssh-host-keys') ?? EMPTY);
}
