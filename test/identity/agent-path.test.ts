/**
 * The agent path's host half against a scripted vmfork-guest: a REPORT shaped as the real agent sends it (its
 * steps and fact keys) is judged by the identity pipeline's own checks, the clock offset comes from the REPORT's
 * stamp, and KICKED is folded into the steps that queued a unit as the script folds its unit_job_rc. The real agent
 * is run against the real client in test/agent/; in real guests by the identity and fork integration tests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentKicked, AgentReport, AgentStep, ConfigRequest } from '../../src/agent/index.js';
import { agentClockReading } from '../../src/identity/agent-path.js';
import { applyIdentityThroughAgent, validateIdentity, type ChildIdentity, type IdentityAgentPort } from '../../src/identity/index.js';
import { hostNowNs } from '../../src/util/index.js';
import { BOOT_ID, sampleFacts } from './sample-output.js';

const ID: ChildIdentity = { hostname: 'web-7', mac: '02:5e:11:a0:3c:9d', machineId: '0123456789abcdef0123456789abcdef', ipv4: { address: '10.0.2.15', prefix: 24, gateway: '10.0.2.2' } };
const TICKET = { templateId: 'tpl@0011aabbccdd', nonce: Buffer.alloc(16, 7) };

/** The agent's report for ID: the sample facts, with the agent's own journald/sshd words (a start was queued). */
function agentSteps(overrides: Record<string, Partial<AgentStep>> = {}): AgentStep[] {
  const facts = sampleFacts(validateIdentity(ID));
  facts['machine-id'] = facts['machine-id']?.map(([k, v]) => [k, k === 'journald' ? 'restart-queued' : v]) ?? [];
  facts['ssh-host-keys'] = facts['ssh-host-keys']?.map(([k, v]) => [k, k === 'sshd' ? 'starting' : v]) ?? [];
  return Object.entries(facts)
    .filter(([step]) => step !== 'guest')
    .map(([step, kvs]) => ({ step, ok: true, us: 1500, facts: kvs.map(([key, value]) => ({ key, value })), ...overrides[step] }));
}

/** A scripted agent: each CONFIG answered with `steps`, its clock stamp off by the next of `skewsNs` (the last repeats). */
function scripted(steps: AgentStep[], kicked: AgentKicked['steps'], ...skewsNs: bigint[]): IdentityAgentPort & { sent: Omit<ConfigRequest, 'type'>[] } {
  const sent: Omit<ConfigRequest, 'type'>[] = [];
  return {
    sent,
    configure: async (req) => {
      sent.push(req);
      const skew = skewsNs[Math.min(sent.length, skewsNs.length) - 1] ?? 0n;
      const report: AgentReport = { type: 'report', id: 40 + sent.length, steps, totalUs: 15_000, bootId: BOOT_ID, clockNs: hostNowNs() + skew };
      return report;
    },
    kicked: async (id) => ({ type: 'kicked', id, steps: kicked }),
  };
}

const UNITS_OK = [{ step: 'units', ok: true, us: 200_000, facts: [{ key: 'unit', value: 'systemd-journald.service' }, { key: 'unit', value: 'ssh.service' }, { key: 'unit_job_rc', value: '0' }] }];

test('a REPORT is judged by the identity checks; CONFIG carries the ticket, the identity and fresh entropy', async () => {
  const port = scripted(agentSteps(), UNITS_OK, 3_000_000n);
  const applied = await applyIdentityThroughAgent(port, ID, TICKET);
  const { report } = applied;
  assert.deepEqual(report.steps.filter((s) => !s.ok), []);
  assert.equal(report.steps.map((s) => s.step).join(','), 'clock,rng,machine-id,hostname,mac,ipv6-link-local,ipv4,neighbours-leases,ssh-host-keys,random-seed');
  assert.deepEqual({ hostname: report.guest.hostname, machineId: report.guest.machineId, mac: report.guest.mac, bootId: report.guest.bootId }, { hostname: 'web-7', machineId: ID.machineId, mac: ID.mac, bootId: BOOT_ID });
  assert.deepEqual(report.guest.ipv4, ID.ipv4);
  // 3 ms ahead, within the bar of this one exchange, however long the (loaded) test host took to make it
  const { clockOffsetMs, clockUncertaintyMs } = report.guest;
  assert.ok(clockUncertaintyMs !== undefined && Math.abs(clockOffsetMs - 3) <= clockUncertaintyMs + 1, `REPORT stamped 3 ms ahead of the host: ${clockOffsetMs} ±${clockUncertaintyMs}`);
  assert.equal(report.sshHostKeyFingerprints.length, 1);
  const [cfg] = port.sent;
  assert.ok(cfg);
  assert.equal(cfg.templateId, TICKET.templateId);
  assert.deepEqual(cfg.nonce, TICKET.nonce);
  assert.deepEqual([cfg.hostname, cfg.mac, cfg.machineId, cfg.interface], ['web-7', ID.mac, ID.machineId, 'eth0']);
  assert.equal(cfg.entropy.length, 64);
  assert.equal(cfg.seed.length, 512);
  const again = await applyIdentityThroughAgent(port, ID, TICKET);
  assert.notDeepEqual(port.sent[1]?.entropy, cfg.entropy, 'new entropy for every CONFIG');
  assert.deepEqual((await applied.kicks()).steps.filter((s) => !s.ok), [], 'the kicks pass');
  assert.ok(again.report.totalMs >= 0);
});

test('a failed step fails the apply with VMFORK_IDENTITY_FAILED naming it, the whole report in details', async () => {
  const steps = agentSteps({ mac: { ok: false, detail: 'no interface eth9: No such device', facts: [] } });
  await assert.rejects(applyIdentityThroughAgent(scripted(steps, UNITS_OK), ID, TICKET), (e: { code: string; message: string; details: { failedSteps: string[] } }) => {
    assert.equal(e.code, 'VMFORK_IDENTITY_FAILED');
    assert.deepEqual(e.details.failedSteps, ['mac']);
    assert.match(e.message, /: mac: exited 1: no interface eth9/);
    return true;
  });
});

test('a CONFIG read late leaves the clock behind: it is sent once more, and a clock still far off fails the clock step', async () => {
  // a loaded host: the agent read the first CONFIG 1.5 s after its stamp, the second at once (the reading is an
  // interval rounded to whole ms around real instants: -1500 or a few ms past it)
  const late = scripted(agentSteps(), UNITS_OK, -1_500_000_000n, -2_000_000n);
  const applied = await applyIdentityThroughAgent(late, ID, TICKET);
  assert.equal(late.sent.length, 2, 'CONFIG sent again');
  assert.deepEqual(late.sent[1]?.machineId, ID.machineId, 'the same identity');
  assert.match(applied.report.steps[0]?.detail ?? '', /CONFIG sent again \(the first left it -150[0-9] ms off\); offset -\d+ ms ±\d+$/);
  assert.deepEqual((await applied.kicks()).steps.filter((s) => !s.ok), [], 'both CONFIGs\' kicks judged');
  const stuck = scripted(agentSteps(), UNITS_OK, 5_000_000_000n);
  await assert.rejects(applyIdentityThroughAgent(stuck, ID, TICKET), (e: { details: { failedSteps: string[] } }) => {
    assert.deepEqual(e.details.failedSteps, ['clock']);
    return true;
  });
  assert.equal(stuck.sent.length, 2, 'once more, not forever');
  const fine = scripted(agentSteps(), UNITS_OK, -160_000_000n);
  await applyIdentityThroughAgent(fine, ID, TICKET);
  assert.equal(fine.sent.length, 1, '160 ms behind (a fresh child\'s read of CONFIG under TCG) is left alone');
});

test('the clock a CONFIG left is an interval: [REPORT clock − arrival, date_ns − stamp], judged with its half-width', () => {
  const ms = (v: number): bigint => BigInt(v) * 1_000_000n;
  const S = 1_700_000_000_000;
  const withDate = (dateNs: bigint) => new Map([['clock', new Map([['date_ns', [String(dateNs)]]])]]);
  // read 400 ms late: set to S at host S+400, 50 ms of steps, the REPORT back 30 ms later
  const late = agentClockReading(withDate(ms(S)), ms(S), ms(S + 50), ms(S + 480));
  assert.deepEqual(late, { offsetMs: -215, uncertaintyMs: 215 });
  assert.ok(Math.abs(-400 - late.offsetMs) <= late.uncertaintyMs, 'the true -400 ms lies within');
  // no usable date_ns (absent, or not between the stamp and the REPORT): the whole window
  assert.deepEqual(agentClockReading(new Map(), ms(S), ms(S + 50), ms(S + 480)), { offsetMs: -190, uncertaintyMs: 240 });
  assert.deepEqual(agentClockReading(withDate(ms(S - 9_000)), ms(S), ms(S + 50), ms(S + 480)), { offsetMs: -190, uncertaintyMs: 240 });
  // a clock ahead of everything the host saw is provably ahead
  const ahead = agentClockReading(new Map(), ms(S), ms(S + 5_050), ms(S + 480));
  assert.ok(ahead.offsetMs - ahead.uncertaintyMs > 4_000, JSON.stringify(ahead));
});

test('KICKED: a failed systemctl fails the steps whose units it named; one that named none fails every step that queued one', async () => {
  const journaldFailed = [{ step: 'units', ok: false, us: 1, detail: 'systemctl reload-or-restart exited 5', facts: [{ key: 'unit', value: 'systemd-journald.service' }, { key: 'unit_job_rc', value: '5' }, { key: 'unit_job_stderr', value: 'Unit systemd-journald.service not found.' }] }];
  const a = await applyIdentityThroughAgent(scripted(agentSteps(), journaldFailed), ID, TICKET);
  await assert.rejects(a.kicks(), (e: { code: string; message: string; details: { failedSteps: string[] } }) => {
    assert.equal(e.code, 'VMFORK_IDENTITY_FAILED');
    assert.deepEqual(e.details.failedSteps, ['machine-id']);
    assert.match(e.message, /machine-id: systemctl reload-or-restart exited 5: Unit systemd-journald.service not found/);
    return true;
  });
  const noSystemctl = [{ step: 'units', ok: false, us: 1, detail: '/bin/systemctl: No such file or directory', facts: [] }];
  const b = await applyIdentityThroughAgent(scripted(agentSteps(), noSystemctl), ID, TICKET);
  await assert.rejects(b.kicks(), (e: { details: { failedSteps: string[] } }) => {
    assert.deepEqual(e.details.failedSteps, ['machine-id', 'ssh-host-keys']);
    return true;
  });
  const nothing = [{ step: 'units', ok: true, us: 1, detail: 'nothing to restart', facts: [] }];
  const c = await applyIdentityThroughAgent(scripted(agentSteps(), nothing), ID, TICKET);
  assert.deepEqual((await c.kicks()).steps.filter((s) => !s.ok), []);
});
