import { randomBytes } from 'node:crypto';
import { VmforkError, isVmforkError } from '../errors.js';
import type { GuestAgentClient } from '../qemu/index.js';
import { hostNowMs, hostNowNs, type Logger } from '../util/index.js';
import { parseIdentityOutput } from './facts.js';
import { IDENTITY_STEPS } from './pipeline.js';
import { guestFacts, hostKeyFingerprints, verifySteps } from './report.js';
import { buildIdentityExec } from './script.js';
import type { ChildIdentity, IdentityReport, VerifyContext } from './types.js';
import { validateIdentity } from './validate.js';

/** What the pipeline needs from the agent (GuestAgentClient, or a scripted stand-in in protocol tests). */
export type IdentityAgent = Pick<GuestAgentClient, 'setTime' | 'exec' | 'execute'>;

export interface ApplyIdentityOptions {
  /** Deadline for the whole apply, every agent command included. @default 30_000 */
  timeoutMs?: number;
  log?: Pick<Logger, 'info' | 'warn'>;
}

/** Host entropy per apply: 64 bytes into the CRNG (≥ its 256-bit key twice over), 512 for the boot seed file. */
export const RNG_ENTROPY_BYTES = 64;
export const RANDOM_SEED_BYTES = 512;

/**
 * Past this offset after the script stepped the clock, it is set again with guest-set-time: precise, but ~1 s
 * under TCG because qemu-ga then runs `hwclock -w`. The script's step is normally good to a few ms.
 */
export const CLOCK_CORRECT_MS = 100;

/** Guest minus host wall clock in ms: guest-get-time against the midpoint of its round trip (error ≤ half of it). */
async function measureClockOffset(agent: IdentityAgent, timeoutMs: number): Promise<number> {
  const before = hostNowMs();
  const guestNs = await agent.execute<number>('guest-get-time', undefined, { timeoutMs });
  return guestNs / 1e6 - (before + hostNowMs()) / 2;
}

/**
 * Gives a running (forked) guest its own identity without a reboot: guest-get-time to measure how stale its clock
 * is, ONE guest-exec running every step of IDENTITY_STEPS (the clock step steps the clock by that offset), then
 * guest-get-time again to verify — falling back to guest-set-time only when the offset is still over
 * CLOCK_CORRECT_MS. Every step is verified from what the guest reports after changing it; when any fails,
 * VMFORK_IDENTITY_FAILED names all failed steps and carries the whole report in `details`. Safe to run again with
 * the same identity.
 */
export async function applyIdentity(agent: IdentityAgent, identity: ChildIdentity, options: ApplyIdentityOptions = {}): Promise<IdentityReport> {
  const id = validateIdentity(identity);
  const t0 = performance.now();
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  const remaining = (): number => Math.max(1, deadline - Date.now());

  const staleMs = await measureClockOffset(agent, remaining());
  const entropy = { rng: randomBytes(RNG_ENTROPY_BYTES), seed: randomBytes(RANDOM_SEED_BYTES) };
  const exec = buildIdentityExec(id, entropy, BigInt(Math.round(-staleMs * 1e6)));
  const start = Date.now();
  const r = await agent.exec(exec.path, exec.args, { input: exec.input, timeoutMs: remaining() });
  const end = Date.now();

  const clock: VerifyContext['clock'] = { offsetMs: Math.round(await measureClockOffset(agent, remaining())) };
  const agentStart = performance.now();
  if (Math.abs(clock.offsetMs ?? 0) > CLOCK_CORRECT_MS) {
    try {
      await agent.setTime(hostNowNs(), { timeoutMs: remaining() });
      clock.correctedWithAgent = true;
      clock.offsetMs = Math.round(await measureClockOffset(agent, remaining()));
    } catch (err) {
      // The agent answered with an error (hwclock missing, say): the clock step reports it.
      if (!(isVmforkError(err) && err.code === 'VMFORK_AGENT_ERROR')) throw err;
      clock.setTimeError = err.message;
    }
  }
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
    guest: guestFacts(output, clock.offsetMs ?? 0),
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
