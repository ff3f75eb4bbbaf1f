/**
 * The script's runtime and helpers, executed by the host's dash (the guest's /bin/sh is dash too) against a
 * temporary directory: these steps only print facts or edit files in that directory, nothing on the host.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fact, factList, parseIdentityOutput } from '../../src/identity/facts.js';
import { clockStep } from '../../src/identity/clock-rng-steps.js';
import { buildIdentityExec } from '../../src/identity/script.js';
import { RUNTIME, SHELL_HELPERS } from '../../src/identity/shell.js';
import { shQuote } from '../../src/util/shell-quote.js';
import type { IdentityStep } from '../../src/identity/types.js';
import { validateIdentity } from '../../src/identity/validate.js';

const dir = mkdtempSync(join(tmpdir(), 'identity-runner-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const ID = validateIdentity({ hostname: 'h', mac: '02:00:00:00:00:01', machineId: 'a'.repeat(32) });
const step = (name: string, body: string): IdentityStep => ({ name, script: () => body, verify: () => ({ ok: true }) });

function sh(script: string, input = ''): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync('dash', ['-c', script], { input });
  return { stdout: r.stdout.toString(), stderr: r.stderr.toString(), status: r.status };
}

test('run_step: rc, stderr and facts per step; a failing command ends only its own step', () => {
  const steps = [
    step('first', 'fact a 1\nfact a "two words"\necho "a warning" >&2'),
    step('breaks', 'fact before 1\nfalse\nfact after 1'),
    step('exits', 'echo boom >&2\necho "second line" >&2\nexit 3'),
    // the stdin lines, decoded by the builtin printf exactly as the rng and random-seed steps do
    step('entropy', `printf "$VMFORK_RNG" > ${shQuote(join(dir, 'rng'))}\nprintf "$VMFORK_SEED" > ${shQuote(join(dir, 'seed'))}\nfact clock "$VMFORK_CLOCK_NS"`),
    step('last', 'fact reached yes'),
  ];
  const rng = randomBytes(64);
  const seed = Buffer.concat([Buffer.from([0, 0, 10, 13, 37, 92, 255]), randomBytes(505)]); // NUL, newline, %, backslash
  const exec = buildIdentityExec(ID, { rng, seed }, 1_700_000_000_123_456_789n, steps);
  const r = sh(exec.args[1] ?? '', exec.input);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '', 'every step stderr is captured into facts');
  const out = parseIdentityOutput(r.stdout);
  const f = (name: string): ReadonlyMap<string, readonly string[]> => out.get(name) ?? new Map();
  assert.deepEqual(factList(f('first'), 'a'), ['1', 'two words']);
  assert.equal(fact(f('first'), 'rc'), '0');
  assert.deepEqual(factList(f('first'), 'stderr'), ['a warning']);
  assert.match(fact(f('first'), 'ms') ?? '', /^\d+$/);
  assert.equal(fact(f('breaks'), 'before'), '1');
  assert.equal(fact(f('breaks'), 'after'), undefined, 'set -e stops the step at the failing command');
  assert.equal(fact(f('breaks'), 'rc'), '1');
  assert.equal(fact(f('exits'), 'rc'), '3');
  assert.deepEqual(factList(f('exits'), 'stderr'), ['boom', 'second line']);
  assert.deepEqual(readFileSync(join(dir, 'rng')), rng);
  assert.deepEqual(readFileSync(join(dir, 'seed')), seed);
  assert.equal(fact(f('entropy'), 'clock'), '1700000000123456789');
  assert.equal(fact(f('last'), 'reached'), 'yes');
  assert.match(fact(out.get('guest') ?? new Map(), 'boot_id') ?? '', /^[0-9a-f-]{36}$/);
});

test('set_hosts_line replaces the 127.0.1.1 line in place, appends when missing, and is idempotent', () => {
  const hosts = join(dir, 'hosts');
  const before = '127.0.0.1\tlocalhost\n127.0.1.1\tvmfork-template\n::1\tlocalhost ip6-localhost\n127.0.1.1 stale-dup\n';
  writeFileSync(hosts, before);
  const apply = (): void => {
    const r = sh(`${SHELL_HELPERS}\nset_hosts_line ${shQuote(hosts)} ${shQuote('127.0.1.1\tweb-1')}`);
    assert.equal(r.status, 0, r.stderr);
  };
  apply();
  const once = readFileSync(hosts, 'utf8');
  assert.equal(once, '127.0.0.1\tlocalhost\n127.0.1.1\tweb-1\n::1\tlocalhost ip6-localhost\n');
  apply();
  assert.equal(readFileSync(hosts, 'utf8'), once);
  writeFileSync(hosts, '127.0.0.1\tlocalhost\n');
  apply();
  assert.equal(readFileSync(hosts, 'utf8'), '127.0.0.1\tlocalhost\n127.0.1.1\tweb-1\n');
  rmSync(hosts);
  apply();
  assert.equal(readFileSync(hosts, 'utf8'), '127.0.1.1\tweb-1\n');
});

test('ssh key marker: keys are current only when the ed25519 key pair exists and the marker holds this machine id', () => {
  const ssh = join(dir, 'ssh');
  const current = (mid: string): boolean => sh(`${SHELL_HELPERS}\nssh_keys_current ${shQuote(ssh)} ${shQuote(mid)}`).status === 0;
  const mid = 'b'.repeat(32);
  assert.equal(sh(`mkdir -p ${shQuote(ssh)}`).status, 0);
  assert.equal(current(mid), false, 'empty dir (the template has no keys)');
  for (const f of ['ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub']) writeFileSync(join(ssh, f), 'k\n');
  assert.equal(current(mid), false, 'keys without a marker were made by someone else (the template booting)');
  writeFileSync(join(ssh, 'vmfork-host-keys.machine-id'), `${'c'.repeat(32)}\n`);
  assert.equal(current(mid), false, 'keys marked for another machine id (the template, or a previous identity)');
  writeFileSync(join(ssh, 'vmfork-host-keys.machine-id'), `${mid}\n`);
  assert.equal(current(mid), true, 'a second run with the same identity keeps the keys');
  writeFileSync(join(ssh, 'ssh_host_ed25519_key.pub'), '');
  assert.equal(current(mid), false, 'an empty public key means a broken pair: regenerate');
  rmSync(join(ssh, 'ssh_host_ed25519_key.pub'));
  assert.equal(current(mid), false);
});

test('put_line writes only when the content differs; read_first tolerates missing files', () => {
  const f = join(dir, 'machine-id');
  const put = (v: string): { stdout: string; stderr: string; status: number | null } =>
    sh(`${SHELL_HELPERS}\nput_line ${shQuote(f)} ${shQuote(v)}\nread_first v ${shQuote(f)}; echo "[$v]"\nread_first w ${shQuote(join(dir, 'missing'))}; echo "[$w]"`);
  const r = put('d'.repeat(32));
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `[${'d'.repeat(32)}]\n[]\n`);
  assert.equal(readFileSync(f, 'utf8'), `${'d'.repeat(32)}\n`);
  const inode = statSync(f).mtimeMs;
  put('d'.repeat(32));
  assert.equal(statSync(f).mtimeMs, inode, 'unchanged content is not rewritten');
  put('e'.repeat(32));
  assert.equal(readFileSync(f, 'utf8'), `${'e'.repeat(32)}\n`);
});

test('epilogues run after every step and the guest facts, only for work a step deferred', () => {
  const steps: IdentityStep[] = [
    { ...step('first', 'defer svc\nfact asked 1'), epilogue: () => 'if take_deferred svc; then fact did restart; fi\nif take_deferred svc; then fact did twice; fi' },
    { ...step('second', 'fact x 1'), epilogue: () => 'if take_deferred other; then fact did other; fi' },
    { ...step('third', 'fact y 1'), epilogue: () => 'echo "cannot restart" >&2\nexit 4' },
  ];
  const exec = buildIdentityExec(ID, { rng: Buffer.alloc(1), seed: Buffer.alloc(1) }, 0n, steps);
  const r = spawnSync('dash', ['-c', exec.args[1] ?? ''], { input: exec.input, env: { ...process.env, VMFORK_STATE_DIR: dir } });
  const stdout = r.stdout.toString();
  const order = [...stdout.matchAll(/^@@step=(\S+) (\S+)=/gm)].map((m) => `${m[1]}.${m[2]}`);
  assert.ok(order.indexOf('third.rc') < order.indexOf('guest.boot_id'), 'every step before the guest facts');
  assert.ok(order.indexOf('guest.boot_id') < order.indexOf('first.did'), 'epilogues after the guest facts');
  const out = parseIdentityOutput(stdout);
  const f = (name: string): ReadonlyMap<string, readonly string[]> => out.get(name) ?? new Map();
  assert.deepEqual(factList(f('first'), 'did'), ['restart'], 'a deferred action runs once');
  assert.equal(fact(f('first'), 'epilogue_rc'), '0');
  assert.equal(fact(f('second'), 'did'), undefined, 'nothing deferred, nothing done');
  assert.equal(fact(f('third'), 'epilogue_rc'), '4');
  assert.deepEqual(factList(f('third'), 'epilogue_stderr'), ['cannot restart']);
  assert.equal(readFileSync(join(dir, 'vmfork-identity.svc'), 'utf8'), '', 'the flag is emptied');
});

/**
 * The clock step against a stand-in `date` first on PATH (the real one would set the host's clock): it records its
 * argv and answers as GNU date does, the old clock 300 s behind the stamp.
 */
function runClockStep(stamp: string): { status: number | null; stderr: string; facts: ReadonlyMap<string, readonly string[]>; calls: string[] } {
  const bin = join(dir, 'fake-bin');
  mkdirSync(bin, { recursive: true });
  const log = join(dir, 'date-calls');
  writeFileSync(log, '');
  const fake = ['#!/bin/sh', `echo "$*" >> ${shQuote(log)}`, 'case $1 in -s) echo 1700000000123456789 ;; *) echo 1699999700000000000 ;; esac'].join('\n');
  writeFileSync(join(bin, 'date'), `${fake}\n`, { mode: 0o755 });
  // the helpers and the runtime (now_cs) without the preamble, whose PATH would skip the stand-in
  const script = `${SHELL_HELPERS}\n${RUNTIME}\nSTEP=clock\n( set -e\n${clockStep.script(ID)}\n)`;
  const r = spawnSync('dash', ['-c', script], { env: { PATH: `${bin}:/usr/bin:/bin`, VMFORK_CLOCK_NS: stamp } });
  return {
    status: r.status,
    stderr: r.stderr.toString(),
    facts: parseIdentityOutput(r.stdout.toString()).get('clock') ?? new Map(),
    calls: readFileSync(log, 'utf8').trim().split('\n').filter(Boolean),
  };
}

test('the clock step SETS the clock to the host stamp (absolute, to the ns) and reports the jump', () => {
  const r = runClockStep('1700000000123456789');
  assert.equal(r.status, 0, r.stderr);
  // set to the stamp plus the shell's own age (10 ms ticks; this dash is a few ms old)
  const aged = Number(fact(r.facts, 'aged_ms'));
  assert.ok(Number.isInteger(aged) && aged >= 0 && aged % 10 === 0 && aged < 60_000, `aged_ms ${aged}`);
  const execMs = Number(fact(r.facts, 'date_exec_ms'));
  assert.ok(Number.isInteger(execMs) && execMs >= 0 && execMs % 10 === 0, `date_exec_ms ${execMs}`);
  const setTo = BigInt(1_700_000_000_123_456_789n + BigInt(aged + execMs) * 1_000_000n);
  const s = setTo / 1_000_000_000n;
  const ns = String(setTo % 1_000_000_000n).padStart(9, '0');
  assert.deepEqual(r.calls, ['+%s%N', `-s @${s}.${ns} +%s%N`]);
  assert.equal(fact(r.facts, 'stamp'), '1700000000123456789');
  // the jump less the guest's time between reading the old clock and setting the new one (ticks of 10 ms)
  const between = Number(fact(r.facts, 'between_ms'));
  assert.ok(Number.isInteger(between) && between >= 0 && between % 5 === 0, `between_ms ${between}`);
  const steppedNs = 300_123_456_789 - between * 1_000_000;
  assert.equal(fact(r.facts, 'stepped'), `+${Math.floor(steppedNs / 1e9)}.${String(steppedNs % 1e9).padStart(9, '0')}`);
  assert.equal(fact(r.facts, 'date_ns'), '1700000000123456789');
  for (const bad of ['', '+300.5', '170000000012345678', '17000000001234567890', '1700000000;reboot']) {
    const b = runClockStep(bad);
    assert.notEqual(b.status, 0, `stamp ${JSON.stringify(bad)} refused`);
    assert.deepEqual(b.calls, [], 'and date never ran');
  }
});
