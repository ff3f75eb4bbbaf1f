import { randomBytes } from 'node:crypto';
import { agentStepOutput, type AgentKicked, type VmforkAgentClient } from '../agent/index.js';
import { VmforkError } from '../errors.js';
import { hostNowMs, hostNowNs, type Logger } from '../util/index.js';
import { RANDOM_SEED_BYTES, RNG_ENTROPY_BYTES } from './apply-identity.js';
import { readingBetween, type ClockReading } from './clock-check.js';
import { fact, type IdentityOutput } from './facts.js';
import { IDENTITY_STEPS } from './pipeline.js';
import { guestFacts, hostKeyFingerprints, verifySteps } from './report.js';
import type { ChildIdentity, IdentityReport, IdentityStepResult, NormalizedIdentity, StepFacts, VerifyContext } from './types.js';
import { validateIdentity } from './validate.js';

/** What the agent path needs from vmfork-guest's client (a scripted peer in protocol tests). */
export type IdentityAgentPort = Pick<VmforkAgentClient, 'configure' | 'kicked'>;

/** The cut a child was forked from: every CONFIG repeats the template id and the nonce of its FORK_ME. */
export interface AgentForkTicket {
  templateId: string;
  nonce: Buffer;
}

/** The REPORT, judged, and the service kicks that follow it (off the critical path: see `kicks`). */
export interface AgentIdentity {
  report: IdentityReport;
  /**
   * Waits for KICKED (the one `systemctl --no-block reload-or-restart` the agent runs after its answer) and judges
   * it as the script path judges its `unit_job_rc`: a step that queued a unit fails when the call failed. Resolves
   * with the report, steps updated; rejects with VMFORK_IDENTITY_FAILED like the apply itself.
   */
  kicks(options?: { timeoutMs?: number }): Promise<IdentityReport>;
}

/**
 * Past this offset after CONFIG, the clock is corrected by sending it again. CONFIG's stamp ages while the guest
 * reads it: 40-160 ms in a fresh child under TCG (measured), well over a second when 20 children share 2 cores;
 * under KVM about a millisecond. A lower threshold would resend routinely under TCG, and a resend waits for the
 * first CONFIG's service kicks (~0.2-0.8 s). The script path corrects past the same 250 ms (CLOCK_CORRECT_MS).
 */
export const AGENT_CLOCK_CORRECT_MS = 250;

/** Which step asked for which unit (the agent queues journald after a machine-id change, ssh when sshd is down). */
const UNIT_STEPS: Readonly<Record<string, string>> = { 'systemd-journald.service': 'machine-id', 'ssh.service': 'ssh-host-keys' };

/** One CONFIG sent and answered, not judged yet. */
interface Answered {
  reportId: number;
  output: IdentityOutput;
  ctx: VerifyContext;
  offsetMs: number;
}

async function configureOnce(agent: IdentityAgentPort, id: NormalizedIdentity, fork: AgentForkTicket, timeoutMs: number): Promise<Answered> {
  const entropy = randomBytes(RNG_ENTROPY_BYTES);
  const seed = randomBytes(RANDOM_SEED_BYTES);
  const start = hostNowMs();
  // stamped here, not at encoding, so the host knows the stamp it sent (the client encodes and writes at once)
  const stampNs = hostNowNs();
  const answer = await agent.configure(
    {
      templateId: fork.templateId,
      nonce: fork.nonce,
      hostname: id.hostname,
      mac: id.mac,
      machineId: id.machineId,
      interface: id.interface,
      ...(id.ipv4 ? { ipv4: id.ipv4 } : {}),
      entropy,
      seed,
      hostClockNs: stampNs,
    },
    { timeoutMs },
  );
  const receivedNs = hostNowNs();
  const output = agentStepOutput(answer);
  const ms = (ns: bigint): number => Number(ns / 1000n) / 1000;
  // the REPORT's clock against the host's clock at arrival: what the offset is at worst if the REPORT came back at
  // once — on a busy host its return can be slow too, so this only says when to send CONFIG again
  const offsetMs = Math.round(ms(answer.clockNs - receivedNs));
  const clock: VerifyContext['clock'] = agentClockReading(output, stampNs, answer.clockNs, receivedNs);
  const ctx: VerifyContext = { identity: id, execWindowMs: { start, end: hostNowMs() }, entropyBytes: { rng: RNG_ENTROPY_BYTES, seed: RANDOM_SEED_BYTES }, clock };
  return { reportId: answer.id, output, ctx, offsetMs };
}

/**
 * The offset a CONFIG left, with the uncertainty of its own measurement. The agent set its clock to the stamp and
 * read it right after (the clock step's `date_ns`); the REPORT carries the guest clock as it was built (`clockNs`).
 * The setting happened at a host instant between the stamp's send and the REPORT's arrival less the guest's own
 * time since (clockNs − date_ns), so the offset lies in [clockNs − received, date_ns − stamp]. One exchange cannot
 * tell a CONFIG read late from a REPORT read late: the interval is the honest answer.
 */
export function agentClockReading(output: IdentityOutput, stampNs: bigint, clockNs: bigint, receivedNs: bigint): ClockReading {
  const ms = (ns: bigint): number => Number(ns / 1000n) / 1000;
  const dateNs = fact(output.get('clock') ?? new Map(), 'date_ns');
  const set = dateNs !== undefined && /^\d+$/.test(dateNs) ? BigInt(dateNs) : undefined;
  const readAfterSet = set !== undefined && set >= stampNs && set <= clockNs ? set : clockNs;
  return readingBetween(ms(clockNs - receivedNs), ms(readAfterSet - stampNs));
}

/**
 * Gives a forked child its identity on the agent path: ONE CONFIG on vmfork-guest's port — the request the
 * template's agent was blocked in returns with it — applied in-process with system calls, answered with a REPORT
 * whose steps and facts are those of the script pipeline. The report is judged by the same per-step checks
 * (`verifySteps`) as the script's output; the clock offset is judged with its uncertainty (agentClockReading). The
 * agent sets the clock ABSOLUTELY, to the host time stamped into CONFIG as it was sent, so a guest that reads it
 * late (a host whose cores are busy with many children) is set that much in the past: when the REPORT's clock is
 * more than AGENT_CLOCK_CORRECT_MS behind the host's at its arrival, the same CONFIG is sent once more, after the
 * first one's service kicks (the agent reads nothing while it runs them) — every step is idempotent — as the script
 * path corrects with guest-set-time. Any failed step is VMFORK_IDENTITY_FAILED naming every failed step, the whole
 * report in `details`. A CONFIG for another template or cut is refused by the agent
 * (VMFORK_AGENT_ERROR, `details.agentCode`), before anything changes.
 */
export async function applyIdentityThroughAgent(
  agent: IdentityAgentPort,
  identity: ChildIdentity,
  fork: AgentForkTicket,
  options: { timeoutMs?: number; log?: Pick<Logger, 'info' | 'warn'> } = {},
): Promise<AgentIdentity> {
  const id = validateIdentity(identity);
  const timeoutMs = options.timeoutMs ?? 30_000;
  const t0 = performance.now();
  const first = await configureOnce(agent, id, fork, timeoutMs);
  const sent = [first];
  const kicked = new Map<number, Pick<AgentKicked, 'steps'>>();
  const kicksOf = async (a: Answered, ms: number): Promise<Pick<AgentKicked, 'steps'>> => {
    const k = kicked.get(a.reportId) ?? (await agent.kicked(a.reportId, { timeoutMs: ms }));
    kicked.set(a.reportId, k);
    return k;
  };
  if (Math.abs(first.offsetMs) > AGENT_CLOCK_CORRECT_MS) {
    // the agent reads its next request only after the kicks it runs after a REPORT: wait for them, or the second
    // CONFIG's stamp would age in the queue as the first one's did
    await kicksOf(first, timeoutMs);
    const again = await configureOnce(agent, id, fork, timeoutMs);
    again.ctx.clock.restampedFromMs = first.offsetMs;
    sent.push(again);
  }
  const last = sent[sent.length - 1] as Answered;
  const totalMs = Math.round(performance.now() - t0);
  const report = judge(last.output, last.ctx, id, totalMs, options.log);
  return {
    report,
    // every CONFIG sent has its kicks (the first one's restarted journald): all folded into the last REPORT
    kicks: async (kickOptions = {}) => {
      let output = last.output;
      for (const a of sent) output = withKicks(output, await kicksOf(a, kickOptions.timeoutMs ?? 30_000));
      return judge(output, last.ctx, id, totalMs, options.log);
    },
  };
}

function judge(output: IdentityOutput, ctx: VerifyContext, id: NormalizedIdentity, totalMs: number, log?: Pick<Logger, 'info' | 'warn'>): IdentityReport {
  const steps = verifySteps(IDENTITY_STEPS, output, ctx, { exitCode: 0, stderr: '' });
  const report: IdentityReport = { steps, totalMs, sshHostKeyFingerprints: hostKeyFingerprints(output), guest: guestFacts(output, ctx.clock.offsetMs ?? 0, ctx.clock.uncertaintyMs) };
  const bad = steps.filter((s) => !s.ok);
  const summary = steps.map(({ step, ok, ms }) => ({ step, ok, ms }));
  if (bad.length > 0) {
    log?.warn({ hostname: id.hostname, steps: summary, failed: bad }, 'identity (agent): steps failed');
    throw new VmforkError('VMFORK_IDENTITY_FAILED', bad.map((s: IdentityStepResult) => `${s.step}: ${s.detail ?? 'failed'}`).join('; '), {
      details: { failedSteps: bad.map((s) => s.step), report },
    });
  }
  log?.info({ hostname: id.hostname, totalMs, steps: summary }, 'identity applied (agent)');
  return report;
}

/**
 * The REPORT's output with KICKED's `units` step folded into the steps that queued each unit, as the script's
 * `flush_unit_jobs` reports `unit_job_rc` / `unit_job_stderr` to them. A failed kick with no unit named (the agent
 * could not run systemctl at all) goes to every step that queued one.
 */
export function withKicks(output: IdentityOutput, kicked: Pick<AgentKicked, 'steps'>): IdentityOutput {
  const units = kicked.steps.find((s) => s.step === 'units');
  if (!units) return output;
  const values = (key: string): string[] => units.facts.filter((f) => f.key === key).map((f) => f.value);
  const rc = values('unit_job_rc')[0] ?? (units.ok ? undefined : '1');
  if (rc === undefined) return output;
  const stderr = values('unit_job_stderr');
  if (!units.ok && units.detail && stderr.length === 0) stderr.push(units.detail);
  const named = values('unit').map((u) => UNIT_STEPS[u]).filter((s): s is string => s !== undefined);
  const queued = named.length ? named : queuedSteps(output);
  const out = new Map<string, StepFacts>(output);
  for (const step of new Set(queued)) {
    const facts = new Map(output.get(step) ?? []);
    // folded more than once (a CONFIG sent again): a failure already there stays
    if (facts.get('unit_job_rc')?.some((v) => v !== '0')) continue;
    facts.set('unit_job_rc', [rc]);
    if (stderr.length) facts.set('unit_job_stderr', stderr);
    out.set(step, facts);
  }
  return out;
}

/** Steps whose facts say they queued a unit job (journald restart, ssh start). */
function queuedSteps(output: IdentityOutput): string[] {
  const out: string[] = [];
  if (output.get('machine-id')?.get('journald')?.includes('restart-queued')) out.push('machine-id');
  if (output.get('ssh-host-keys')?.get('sshd')?.includes('starting')) out.push('ssh-host-keys');
  return out;
}

