/**
 * applyIdentity's orchestration against a scripted agent (the protocol only; identity.itest.ts runs it in a real
 * guest): command order, what travels in argv versus stdin, and how failures are reported.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VmforkError } from '../../src/errors.js';
import { applyIdentity, type IdentityAgent } from '../../src/identity/apply-identity.js';
import type { ChildIdentity } from '../../src/identity/types.js';
import { validateIdentity } from '../../src/identity/validate.js';
import { GuestAgentCommandError, type ExecOptions, type ExecResult } from '../../src/qemu/guest-agent-client.js';
import { SAMPLE_FINGERPRINTS, renderOutput, sampleFacts, type SampleFacts } from './sample-output.js';

const IDENTITY: ChildIdentity = {
  hostname: 'web-1',
  mac: '02:AB:CD:EF:01:23',
  machineId: '0123456789abcdef0123456789abcdef',
  ipv4: { address: '10.0.2.15', prefix: 24, gateway: '10.0.2.2' },
};
const NORMALIZED = validateIdentity(IDENTITY);

/**
 * Plays the guest's side: its clock is `staleMs` behind until the script runs, `residualMs` off after it, and
 * 1 ms off once guest-set-time was called; the exec prints the given facts. Offsets are judged against the host
 * window of each call, so a slow (loaded) test host widens the bars without changing the verdicts.
 */
class ScriptedAgent implements IdentityAgent {
  readonly calls: string[] = [];
  lastExec: { path: string; args: readonly string[]; options: ExecOptions | undefined } | undefined;
  private offsetMs: number;

  constructor(
    private readonly facts: (nowMs: number) => SampleFacts,
    private readonly clock: { staleMs: number; residualMs: number; setTimeFails?: boolean } = { staleMs: -300_000, residualMs: 3 },
  ) {
    this.offsetMs = clock.staleMs;
  }

  async setTime(): Promise<void> {
    this.calls.push('guest-set-time');
    if (this.clock.setTimeFails) throw new GuestAgentCommandError('guest-set-time', 'GenericError', 'hwclock: cannot access the Hardware Clock');
    this.offsetMs = 1;
  }

  async exec(path: string, args: readonly string[] = [], options?: ExecOptions): Promise<ExecResult> {
    this.calls.push('guest-exec');
    this.lastExec = { path, args, options };
    this.offsetMs = this.clock.residualMs;
    return { exitCode: 0, stdout: Buffer.from(renderOutput(this.facts(Date.now()))), stderr: Buffer.alloc(0), truncated: false };
  }

  async execute<T>(command: string): Promise<T> {
    this.calls.push(command);
    assert.equal(command, 'guest-get-time');
    return ((performance.timeOrigin + performance.now() + this.offsetMs) * 1e6) as T;
  }
}

const stdinLines = (agent: ScriptedAgent): string[] => String(agent.lastExec?.options?.input).split('\n');

/** The clock calls after the exec: 1-3 guest-get-time probes (the tightest kept), as the scripted round trips allow. */
function assertProbes(calls: readonly string[]): void {
  assert.ok(calls.length >= 1 && calls.length <= 3 && calls.every((c) => c === 'guest-get-time'), JSON.stringify(calls));
}

/** The reported offset is `trueMs` within the reading's own uncertainty (1 ms of rounding). */
function assertOffset(guest: { clockOffsetMs: number; clockUncertaintyMs?: number }, trueMs: number): void {
  assert.ok(guest.clockUncertaintyMs !== undefined, 'the offset carries its uncertainty');
  assert.ok(Math.abs(guest.clockOffsetMs - trueMs) <= guest.clockUncertaintyMs + 1, `offset ${guest.clockOffsetMs} ±${guest.clockUncertaintyMs} ms holds ${trueMs}`);
}

test('ONE exec carrying the host clock, then the clock read back; the report is the guest\'s', async () => {
  const agent = new ScriptedAgent((now) => sampleFacts(NORMALIZED, now));
  const before = BigInt(Date.now()) * 1_000_000n;
  const report = await applyIdentity(agent, IDENTITY);
  const after = BigInt(Date.now() + 1) * 1_000_000n;
  assert.equal(agent.calls[0], 'guest-exec', 'no measurement before: the clock is set absolutely');
  assertProbes(agent.calls.slice(1));
  const stamp = stdinLines(agent)[2] ?? '';
  assert.match(stamp, /^\d{19}$/);
  assert.ok(BigInt(stamp) >= before && BigInt(stamp) <= after, `stamp ${stamp} taken during the call`);
  assert.ok(report.steps.every((s) => s.ok));
  assert.equal(report.steps.length, 10);
  assert.equal(report.guest.hostname, 'web-1');
  assert.equal(report.guest.mac, '02:ab:cd:ef:01:23');
  assertOffset(report.guest, 3);
  assert.deepEqual(report.sshHostKeyFingerprints, [SAMPLE_FINGERPRINTS.ed25519]);
  assert.ok(report.totalMs >= 0);
});

test('entropy goes to stdin (64 + 512 fresh bytes per apply), never into argv', async () => {
  const agent = new ScriptedAgent((now) => sampleFacts(NORMALIZED, now));
  await applyIdentity(agent, IDENTITY);
  const first = agent.lastExec;
  const [rng = '', seed = ''] = stdinLines(agent);
  await applyIdentity(agent, IDENTITY);
  const second = agent.lastExec;
  assert.ok(first && second);
  assert.equal(first.path, '/bin/sh');
  assert.match(rng, /^(\\[0-3][0-7]{2}){64}$/);
  assert.match(seed, /^(\\[0-3][0-7]{2}){512}$/);
  const argv = first.args.join(' ');
  assert.ok(!argv.includes(rng) && !argv.includes(seed) && !argv.includes(rng.slice(0, 40)));
  assert.notEqual(stdinLines(agent)[0], rng, 'fresh entropy on every apply');
  assert.deepEqual(second.args, first.args, 'same identity, same script');
});

test('a clock provably off after the script is set once more with guest-set-time, then read back again', async () => {
  const agent = new ScriptedAgent((now) => sampleFacts(NORMALIZED, now), { staleMs: -300_000, residualMs: 450 });
  const report = await applyIdentity(agent, IDENTITY);
  const set = agent.calls.indexOf('guest-set-time');
  assert.equal(agent.calls[0], 'guest-exec');
  assert.ok(set > 1, JSON.stringify(agent.calls));
  assertProbes(agent.calls.slice(1, set));
  assertProbes(agent.calls.slice(set + 1));
  assertOffset(report.guest, 1);
  assert.match(report.steps[0]?.detail ?? '', /corrected with guest-set-time; offset -?\d+ ms ±\d+/);
});

test('a clock left within 250 ms (the exec request\'s transit on a loaded host) is not set again: guest-set-time costs seconds', async () => {
  const agent = new ScriptedAgent((now) => sampleFacts(NORMALIZED, now), { staleMs: -300_000, residualMs: -200 });
  const report = await applyIdentity(agent, IDENTITY);
  assert.ok(!agent.calls.includes('guest-set-time'), JSON.stringify(agent.calls));
  assertOffset(report.guest, -200);
});

test('failed steps are all collected, then VMFORK_IDENTITY_FAILED names them and carries the report', async () => {
  const agent = new ScriptedAgent((now) => ({
    ...sampleFacts(NORMALIZED, now),
    mac: [['rc', '1'], ['stderr', 'RTNETLINK answers: Operation not permitted']],
    'random-seed': [],
  }));
  await assert.rejects(applyIdentity(agent, IDENTITY), (err: unknown) => {
    assert.ok(err instanceof VmforkError);
    assert.equal(err.code, 'VMFORK_IDENTITY_FAILED');
    assert.match(err.message, /mac: exited 1: RTNETLINK answers: Operation not permitted; random-seed: the guest did not report/);
    assert.deepEqual(err.details?.failedSteps, ['mac', 'random-seed']);
    const report = err.details?.report as { steps: { step: string; ok: boolean }[] };
    assert.equal(report.steps.filter((s) => s.ok).length, 8, 'the other steps still ran and verified');
    return true;
  });
});

test('an agent error from the guest-set-time fallback fails the clock step only', async () => {
  const agent = new ScriptedAgent((now) => sampleFacts(NORMALIZED, now), { staleMs: -300_000, residualMs: 450, setTimeFails: true });
  await assert.rejects(applyIdentity(agent, IDENTITY), (err: unknown) => {
    assert.ok(err instanceof VmforkError && err.code === 'VMFORK_IDENTITY_FAILED');
    assert.deepEqual(err.details?.failedSteps, ['clock']);
    assert.match(err.message, /clock: guest-set-time failed: .*hwclock/);
    return true;
  });
});

test('an invalid identity is refused before anything is sent to the guest', async () => {
  const agent = new ScriptedAgent((now) => sampleFacts(NORMALIZED, now));
  await assert.rejects(applyIdentity(agent, { ...IDENTITY, hostname: 'x;reboot' }), (err: unknown) => err instanceof VmforkError && err.code === 'VMFORK_INVALID_NAME');
  assert.deepEqual(agent.calls, []);
});
