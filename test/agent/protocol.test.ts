/**
 * vmfork-guest's protocol handling, run on this host: the real agent (compiled from guest/) in fresh namespaces
 * (test/agent/harness.ts), driven by the real host client. The CONFIG report is judged by the identity pipeline's
 * own per-step checks (src/identity), the same ones the shell path's output goes through.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { agentStepOutput, stepFacts, type AgentReport, type AgentStep, type ConfigRequest, type VmforkAgentClient } from '../../src/agent/index.js';
import { IDENTITY_STEPS, validateIdentity, type ChildIdentity } from '../../src/identity/index.js';
import { eui64LinkLocal, parseIfInet6 } from '../../src/identity/ipv6.js';
import { verifySteps } from '../../src/identity/report.js';
import { sshFingerprint } from '../../src/identity/ssh-step.js';
import { run } from '../../src/util/index.js';
import { startAgent, TRANSIENT_MACHINE_ID, type AgentUnderTest } from './harness.js';

const ID: ChildIdentity = {
  hostname: 'web-7',
  mac: '02:5e:11:a0:3c:9d',
  ipv4: { address: '10.77.0.7', prefix: 24, gateway: '10.77.0.1' },
  machineId: '0123456789abcdef0123456789abcdef',
};

/** Steps the user namespace cannot do on this host, by design: the host's clock and CRNG stay untouched. */
const HOST_PROTECTED = ['clock', 'rng'];

async function forked(a: AgentUnderTest, templateId = 'tpl-test'): Promise<{ client: VmforkAgentClient; nonce: Buffer }> {
  const client = a.client();
  await client.hello();
  const { prepared, forkMe } = await client.prepare({ templateId });
  assert.deepEqual(prepared.steps.filter((s) => !s.ok), [], 'every prepare step ok');
  // the cut waits for the boot to finish before anything else (a job queued at the cut would run in every child)
  assert.equal(prepared.steps[0]?.step, 'boot');
  assert.deepEqual(stepFacts(prepared.steps[0], 'state'), ['running']);
  assert.ok(forkMe, 'FORK_ME after a clean PREPARE');
  return { client, nonce: forkMe.nonce };
}

function configOf(identity: ChildIdentity, nonce: Buffer, templateId = 'tpl-test'): Omit<ConfigRequest, 'type'> & { seed: Buffer } {
  return { templateId, nonce, ...identity, entropy: randomBytes(64), seed: randomBytes(512) };
}

function step(report: AgentReport, name: string): AgentStep {
  const s = report.steps.find((x) => x.step === name);
  assert.ok(s, `the report has a ${name} step`);
  return s;
}

/** The identity pipeline's verdicts on the agent's report; only the host-protected steps may fail, with EPERM. */
function judge(report: AgentReport, identity: ChildIdentity, window: { start: number; end: number }): void {
  const verdicts = verifySteps(IDENTITY_STEPS, agentStepOutput(report), {
    identity: validateIdentity(identity),
    execWindowMs: window,
    entropyBytes: { rng: 64, seed: 512 },
    clock: { offsetMs: 0 },
  }, { exitCode: 0, stderr: '' });
  assert.deepEqual(report.steps.map((s) => s.step), IDENTITY_STEPS.map((s) => s.name), 'the pipeline\'s steps, in its order');
  for (const v of verdicts) {
    if (HOST_PROTECTED.includes(v.step)) {
      assert.equal(v.ok, false, v.step);
      assert.match(v.detail ?? '', /Operation not permitted/, `${v.step} refused by the kernel in the user namespace`);
    } else {
      assert.equal(v.ok, true, `${v.step}: ${v.detail}`);
    }
  }
}

const inode = (root: string, path: string): number => statSync(join(root, path)).ino;

test('HELLO: protocol 1, capabilities, idle; a CONFIG before any FORK_ME is refused', async (t) => {
  const a = await startAgent();
  t.after(() => a.stop());
  const client = a.client();
  const hello = await client.hello();
  assert.equal(hello.protocol, 1);
  assert.equal(hello.state, 'idle');
  assert.equal(hello.maxPayload, 65_536);
  for (const c of ['prepare', 'fork-me', 'config', 'ssh-ed25519']) assert.ok(hello.capabilities.includes(c), c);
  assert.equal(hello.bootId, readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
  await assert.rejects(client.configure(configOf(ID, Buffer.alloc(16))), (e: { code: string; details?: { agentCode?: string } }) => {
    assert.equal(e.code, 'VMFORK_AGENT_ERROR');
    assert.equal(e.details?.agentCode, 'not-forked');
    return true;
  });
  assert.match(readFileSync(join(a.root, 'etc/hostname'), 'utf8'), /vmfork-template/, 'nothing applied');
});

test('PREPARE, FORK_ME, then CONFIG: the identity is applied in-process and passes the identity pipeline\'s checks', async (t) => {
  const a = await startAgent();
  t.after(() => a.stop());
  const { client, nonce } = await forked(a);
  const cfg = configOf(ID, nonce);
  const start = Date.now();
  const report = await client.configure(cfg);
  const end = Date.now();
  t.diagnostic(`CONFIG round trip ${end - start} ms; agent ${(report.totalUs / 1000).toFixed(1)} ms: ${report.steps.map((s) => `${s.step} ${(s.us / 1000).toFixed(1)}`).join(', ')}`);
  judge(report, ID, { start, end });

  // read back from the files themselves, not the report
  const r = a.root;
  assert.equal(readFileSync(join(r, 'etc/machine-id'), 'utf8'), `${ID.machineId}\n`, 'written under the removed bind mount');
  assert.equal(readFileSync(join(r, 'run/machine-id'), 'utf8'), `${TRANSIENT_MACHINE_ID}\n`, 'the transient id is left alone');
  assert.equal(readFileSync(join(r, 'etc/hostname'), 'utf8'), 'web-7\n');
  assert.equal(readFileSync(join(r, 'etc/hosts'), 'utf8'), '127.0.0.1\tlocalhost\n127.0.1.1\tweb-7\n::1\tlocalhost ip6-localhost ip6-loopback\n');
  assert.deepEqual(readFileSync(join(r, 'var/lib/systemd/random-seed')), cfg.seed);
  assert.equal(statSync(join(r, 'var/lib/systemd/random-seed')).mode & 0o777, 0o600);
  assert.deepEqual(parseIfInet6(stepFacts(step(report, 'ipv6-link-local'), 'll')).map((x) => x.address), [eui64LinkLocal(ID.mac)]);
  assert.ok(!stepFacts(step(report, 'neighbours-leases'), 'neighbour').some((n) => n.startsWith('10.77.0.50 ')), 'the inherited neighbour is gone');
  assert.deepEqual(stepFacts(step(report, 'neighbours-leases'), 'removed'), [], 'PREPARE already removed the lease');

  // the host key: born in the guest, in OpenSSH's formats, and it signs
  const key = join(r, 'etc/ssh/ssh_host_ed25519_key');
  const pub = readFileSync(`${key}.pub`, 'utf8').trim();
  assert.equal(statSync(key).mode & 0o777, 0o600);
  assert.equal(statSync(`${key}.pub`).mode & 0o777, 0o644);
  assert.deepEqual(stepFacts(step(report, 'ssh-host-keys'), 'pubkey'), [pub]);
  assert.equal((await run('ssh-keygen', ['-y', '-f', key])).stdout.trim(), pub);
  const fp = (await run('ssh-keygen', ['-lf', `${key}.pub`])).stdout;
  assert.ok(fp.includes(`${sshFingerprint(pub)?.split(' ')[1] ?? '?'} root@web-7 (ED25519)`), fp);
  const data = join(r, 'signed');
  writeFileSync(data, 'vmfork');
  await run('ssh-keygen', ['-Y', 'sign', '-q', '-f', key, '-n', 'test', data]);
  const check = await run('ssh-keygen', ['-Y', 'check-novalidate', '-n', 'test', '-s', `${data}.sig`], { input: 'vmfork' });
  assert.match(check.stdout, /Good "test" signature/);

  // service kicks after the answer, in one systemctl call
  const kicked = await client.kicked(report.id);
  assert.deepEqual(kicked.steps.map((s) => [s.step, s.ok]), [['units', true]]);
  assert.deepEqual(readFileSync(join(r, 'systemctl.log'), 'utf8').trim().split('\n'), [
    // PREPARE waits for the boot first (through timeout(1)), then stops sshd
    'is-system-running --wait',
    'stop ssh.service ssh.socket',
    '--no-block reload-or-restart systemd-journald.service ssh.service',
  ]);
  assert.match(readFileSync(join(r, 'run/vmfork-guest.state'), 'utf8'), /^state=configured\ntemplate=tpl-test\nnonce=[0-9a-f]{32}\n$/);
});

test('the same CONFIG again changes nothing that needs no change; a new identity replaces everything, keys included', async (t) => {
  const a = await startAgent();
  t.after(() => a.stop());
  const { client, nonce } = await forked(a);
  const first = await client.configure(configOf(ID, nonce));
  const r = a.root;
  const files = ['etc/hostname', 'etc/hosts', 'etc/machine-id', 'etc/ssh/ssh_host_ed25519_key', 'etc/ssh/ssh_host_ed25519_key.pub'];
  const inodes = files.map((f) => inode(r, f));

  const start = Date.now();
  const again = await client.configure(configOf(ID, nonce));
  judge(again, ID, { start, end: Date.now() });
  assert.deepEqual(files.map((f) => inode(r, f)), inodes, 'no file rewritten');
  assert.deepEqual(stepFacts(step(again, 'ssh-host-keys'), 'generated'), ['0']);
  assert.deepEqual(stepFacts(step(again, 'ssh-host-keys'), 'pubkey'), stepFacts(step(first, 'ssh-host-keys'), 'pubkey'));
  assert.deepEqual(stepFacts(step(again, 'machine-id'), 'journald'), ['unchanged']);

  const other: ChildIdentity = { hostname: 'db-2.corp.example', mac: '02:5e:11:a0:3c:9e', machineId: 'fedcba9876543210fedcba9876543210' };
  const third = await client.configure(configOf(other, nonce));
  judge(third, other, { start, end: Date.now() });
  assert.notDeepEqual(stepFacts(step(third, 'ssh-host-keys'), 'pubkey'), stepFacts(step(first, 'ssh-host-keys'), 'pubkey'));
  assert.match(readFileSync(join(r, 'etc/hosts'), 'utf8'), /^127\.0\.1\.1\tdb-2\.corp\.example\tdb-2$/m);
  assert.deepEqual(stepFacts(step(third, 'ipv4'), 'out'), [], 'no ipv4 asked: none left');
});

test('an agent restarted in a configured child keeps its fork: same template and nonce accepted, others refused', async (t) => {
  const a = await startAgent();
  const { nonce } = await forked(a, 'tpl-restart');
  await a.client().configure(configOf(ID, nonce, 'tpl-restart'));
  await a.stop({ keepRoot: true });

  const b = await startAgent({ root: a.root });
  t.after(() => b.stop());
  const client = b.client();
  const hello = await client.hello();
  assert.equal(hello.state, 'configured');
  assert.equal(hello.templateId, 'tpl-restart');
  const bad = Buffer.from(nonce);
  bad[0] = (bad[0] ?? 0) ^ 1;
  await assert.rejects(client.configure(configOf(ID, bad, 'tpl-restart')), (e: { details?: { agentCode?: string } }) => e.details?.agentCode === 'wrong-nonce');
  const report = await client.configure(configOf(ID, nonce, 'tpl-restart'));
  assert.ok(report.steps.every((s) => s.ok || HOST_PROTECTED.includes(s.step)), JSON.stringify(report.steps.filter((s) => !s.ok)));
});
