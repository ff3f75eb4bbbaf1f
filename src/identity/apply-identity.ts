import { randomBytes } from 'node:crypto';
import { VmforkError } from '../errors.js';
import type { GuestAgentClient } from '../qemu/index.js';
import { hostNowMs, hostNowNs, type Logger } from '../util/index.js';
import { checkGuestClock } from './clock-check.js';
import { parseIdentityOutput } from './facts.js';
import { IDENTITY_STEPS } from './pipeline.js';
import { guestFacts, hostKeyFingerprints, verifySteps } from './report.js';
import { buildIdentityExec } from './script.js';
import type { ChildIdentity, IdentityReport, VerifyContext } from './types.js';
import { validateIdentity } from './validate.js';

/** What the pipeline needs from the agent (GuestAgentClient, or a scripted stand-in in protocol tests). */
export type IdentityAgent = Pick<GuestAgentClient, 'setTime' | 'exec' | 'execute'>;

export interface ApplyIdentityOptions {
  /**
   * Deadline of the identity exec (the script's whole run). The clock calls around it have their own
   * (CLOCK_CALL_TIMEOUT_MS each, at most 7): a slow exec on a loaded host must not leave them a few ms.
   * @default 120_000
   */
  timeoutMs?: number;
  log?: Pick<Logger, 'info' | 'warn'>;
}

/** Host entropy per apply: 64 bytes into the CRNG (≥ its 256-bit key twice over), 512 for the boot seed file. */
export const RNG_ENTROPY_BYTES = 64;
export const RANDOM_SEED_BYTES = 512;

/**
 * Gives a running (forked) guest its own identity without a reboot: ONE guest-exec running every step of
 * IDENTITY_STEPS — the clock step sets the clock to the host's stamp sent with it — then the clock read back with
 * guest-get-time and, when provably off, set once more with guest-set-time (checkGuestClock). Every step is verified
 * from what the guest reports after changing it; when any fails, VMFORK_IDENTITY_FAILED names all failed steps and
 * carries the whole report in `details`. Safe to run again with the same identity.
 */
export async function applyIdentity(agent: IdentityAgent, identity: ChildIdentity, options: ApplyIdentityOptions = {}): Promise<IdentityReport> {
  const id = validateIdentity(identity);
  const t0 = performance.now();
  const entropy = { rng: randomBytes(RNG_ENTROPY_BYTES), seed: randomBytes(RANDOM_SEED_BYTES) };
  const start = hostNowMs();
  // the stamp is taken here, right before the exec is sent: it ages only by the exec's start in the guest
  const exec = buildIdentityExec(id, entropy, hostNowNs());
  const r = await agent.exec(exec.path, exec.args, { input: exec.input, timeoutMs: options.timeoutMs ?? 120_000 });
  const end = hostNowMs();

  const agentStart = performance.now();
  const clock = await checkGuestClock(agent);
  const agentClockMs = Math.round(performance.now() - agentStart);

  const output = parseIdentityOutput(r.stdout.toString('utf8'));
  const ctx: VerifyContext = {
    identity: id,
    execWindowMs: { start, end },
    entropyBytes: { rng: RNG_ENTROPY_BYTES, seed: RANDOM_SEED_BYTES },
    clock,
  };
  const steps = verifySteps(IDENTITY_STEPS, output, ctx, { exitCode: r.exitCode, stderr: r.stderr.toString('utf8') });
  const clockResult = steps.find((s) => s.step === 'clock');
  if (clockResult) clockResult.ms = agentClockMs + (clockResult.ms ?? 0);

  const report: IdentityReport = {
    steps,
    totalMs: Math.round(performance.now() - t0),
    sshHostKeyFingerprints: hostKeyFingerprints(output),
    guest: guestFacts(output, clock.offsetMs ?? 0, clock.uncertaintyMs),
  };
  const bad = steps.filter((s) => !s.ok);
  const summary = steps.map(({ step, ok, ms }) => ({ step, ok, ms }));
  if (bad.length > 0) {
    options.log?.warn({ hostname: id.hostname, steps: summary, failed: bad }, 'identity: steps failed');
    throw new VmforkError('VMFORK_IDENTITY_FAILED', bad.map((s) => `${s.step}: ${s.detail ?? 'failed'}`).join('; '), {
      details: { failedSteps: bad.map((s) => s.step), report },
    });
  }
  options.log?.info({ hostname: id.hostname, totalMs: report.totalMs, steps: summary }, 'identity applied');
  return report;
}
