import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { IDENTITY_STEPS, IDENTITY_STEP_NAMES } from '../../src/identity/pipeline.js';
import { buildIdentityExec, buildIdentityScript, octalEscapes } from '../../src/identity/script.js';
import { ipBatch } from '../../src/identity/network-steps.js';
import { stepFunctionName } from '../../src/identity/shell.js';
import { shQuote } from '../../src/util/shell-quote.js';
import { validateIdentity } from '../../src/identity/validate.js';

const ID = validateIdentity({
  hostname: 'web-1.pool.example',
  mac: '02:ab:cd:ef:01:23',
  machineId: '0123456789abcdef0123456789abcdef',
  ipv4: { address: '10.231.0.5', prefix: 24, gateway: '10.231.0.1' },
});
const stepScript = (name: string): string => {
  const step = IDENTITY_STEPS.find((s) => s.name === name);
  assert.ok(step, name);
  return step.script(ID);
};

test('the steps run in the documented order', () => {
  assert.deepEqual(IDENTITY_STEP_NAMES, [
    'clock',
    'rng',
    'machine-id',
    'hostname',
    'mac',
    'ipv6-link-local',
    'ipv4',
    'neighbours-leases',
    'ssh-host-keys',
    'random-seed',
  ]);
  const script = buildIdentityScript(ID);
  const calls = [...script.matchAll(/^run_step (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]);
  assert.deepEqual(
    calls,
    IDENTITY_STEP_NAMES.map((n) => [n, stepFunctionName(n)]),
  );
  // every function is defined before the first call, and the guest facts come after the last step
  assert.ok(script.lastIndexOf('() {') < script.indexOf('run_step clock'));
  assert.ok(script.indexOf('STEP=guest') > script.indexOf('run_step random-seed'));
});

test('the generated script is valid POSIX sh (dash -n)', () => {
  for (const ipv4 of [ID.ipv4, undefined]) {
    const r = spawnSync('dash', ['-n'], { input: buildIdentityScript({ ...ID, ipv4 }) });
    assert.equal(r.status, 0, r.stderr.toString());
  }
});

test('shQuote survives every awkward character through a real shell', () => {
  for (const value of ["it's", 'a;b', '$(id)', '`id`', 'a b\tc', 'back\\slash', '"dq"', "''", '', '\n']) {
    const r = spawnSync('dash', ['-c', `printf '%s' ${shQuote(value)}`]);
    assert.equal(r.stdout.toString(), value);
  }
  assert.throws(() => shQuote('a\0b'));
});

test('per-step scripts carry the identity only as shell-quoted literals', () => {
  assert.match(stepScript('hostname'), /^h='web-1\.pool\.example'$/m);
  assert.match(stepScript('hostname'), /set_hosts_line \/etc\/hosts '127\.0\.1\.1\tweb-1\.pool\.example\tweb-1'/);
  assert.match(stepScript('machine-id'), /^mid='0123456789abcdef0123456789abcdef'$/m);
  // network values go into ip -batch through a QUOTED here-document: the shell expands nothing in it
  assert.match(stepScript('mac'), /^ip -batch - <<'VMFORK_IP'\nlink set dev eth0 down\nlink set dev eth0 address 02:ab:cd:ef:01:23\nVMFORK_IP$/m);
  assert.match(stepScript('mac'), /^dev='eth0'$/m);
  assert.match(stepScript('ipv4'), /^addr add 10\.231\.0\.5\/24 broadcast \+ dev eth0$/m);
  assert.match(stepScript('ipv4'), /^route replace default via 10\.231\.0\.1 dev eth0$/m);
  assert.throws(() => ipBatch('', ['link set dev eth0 address $(reboot)']), /unsafe/);
  assert.throws(() => ipBatch('', ['link set dev eth0\nVMFORK_IP\nreboot']), /unsafe/);
  assert.match(stepScript('ssh-host-keys'), /-C 'root@web-1\.pool\.example' -f \/etc\/ssh\/ssh_host_ed25519_key/);
  // ed25519 only, like the image's first boot; the template's key is overwritten ("y"), not removed with an rm
  assert.match(stepScript('ssh-host-keys'), /ssh-keygen -q -t ed25519 .*<<'VMFORK_Y'\ny\nVMFORK_Y$/m);
  assert.doesNotMatch(stepScript('ssh-host-keys'), /-t (rsa|ecdsa)|ssh-keygen -A|rm -f \/etc\/ssh\/ssh_host_\*/);
});

test('without ipv4 the step still flushes, and adds nothing', () => {
  const s = IDENTITY_STEPS.find((x) => x.name === 'ipv4')?.script({ ...ID, ipv4: undefined }) ?? '';
  assert.match(s, /^addr flush dev eth0 scope global$/m);
  assert.match(s, /^route flush dev eth0$/m);
  assert.doesNotMatch(s, /addr add|route replace/);
});

test('a custom interface name reaches every network step', () => {
  for (const name of ['mac', 'ipv6-link-local', 'ipv4', 'neighbours-leases']) {
    const s = IDENTITY_STEPS.find((x) => x.name === name)?.script({ ...ID, interface: 'ens3' }) ?? '';
    assert.match(s, /dev ens3\b/, name);
    assert.doesNotMatch(s, /eth0/, name);
  }
});

test('entropy travels on stdin only, never in argv', () => {
  const rng = Buffer.from('R'.repeat(64));
  const seed = Buffer.from('S'.repeat(512));
  const exec = buildIdentityExec(ID, { rng, seed }, 1_700_000_000_123_456_789n);
  assert.equal(exec.path, '/bin/sh');
  assert.equal(exec.args[0], '-c');
  assert.equal(exec.args.length, 2);
  const argv = exec.args.join('\0');
  for (const secret of [octalEscapes(rng), octalEscapes(seed), rng.toString('base64'), seed.toString('hex'), 'RRRRRRRR', 'SSSSSSSS', '\\122\\122']) {
    assert.ok(!argv.includes(secret), 'entropy leaked into argv');
  }
  assert.equal(exec.input, `${octalEscapes(rng)}\n${octalEscapes(seed)}\n1700000000123456789\n`);
  // read with the builtin `read` into unexported variables, decoded by the builtin printf: no exec ever sees it
  const script = exec.args[1] ?? '';
  assert.match(script, /^IFS= read -r VMFORK_RNG \|\| :$/m);
  assert.match(script, /^printf "\$VMFORK_RNG" > \/dev\/urandom$/m);
  assert.match(script, /^umask 077\nprintf "\$VMFORK_SEED" > "\$f"$/m);
  assert.doesNotMatch(script, /export VMFORK_|"\$VMFORK_(RNG|SEED)"\s*\|/);
  assert.equal(octalEscapes(Buffer.from([0, 8, 255])), '\\000\\010\\377');
});

test('the same identity always gives the same script (nothing random or time-dependent in argv)', () => {
  assert.deepEqual(buildIdentityExec(ID, { rng: Buffer.alloc(64), seed: Buffer.alloc(512) }, 1n).args, buildIdentityExec(ID, { rng: Buffer.alloc(64, 1), seed: Buffer.alloc(512, 1) }, 2n).args);
});
