import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyPoolDefaults,
  canonicalSize,
  parsePoolSpec,
  parsePoolSpecText,
  poolChildNames,
  type PoolSpec,
} from '../../src/pool/spec.js';
import { PoolSpecInputSchema } from '../../src/pool/spec-schema.js';
import { pushProblems } from '../../src/pool/push.js';
import { phase1Digest } from '../../src/replica/index.js';
import { replicaTemplateName } from '../../src/replica/spec.js';
import { problems } from './spec-problems.js';

const ISSUE_EXAMPLE = `
name: desk                      # RFC 1123 label
image: default
provisioning: up-front          # up-front | on-demand
persistent: true
size: { max: 10, min: 4, spares: 2 }
naming: { pattern: "desk-{n:3}" }
network: default
disks: { userData: 256M, disposable: 256M, swap: 64M }
customize:
  common: [ { path: /usr/local/lib/vmfork/common/10-site.sh, timeoutSeconds: 120 } ]
  perChild: [ { path: /usr/local/lib/vmfork/per-child/10-join.sh, args: { domain: corp.example }, timeoutSeconds: 20 } ]
  machinePassword: true
stopOnError: true
datastore: default
`;

const MINIMAL = { name: 'lab', image: 'default', size: { max: 3 }, disks: { disposable: '128M' } };

function rejects(value: unknown, path: string, message: RegExp): void {
  const found = problems(value);
  assert.ok(found.some((p) => p.path === path && message.test(p.message)), `${path} ~ ${message} not in ${JSON.stringify(found)}`);
}

test('the issue\'s example parses as written, with its sizes canonical', () => {
  const spec = parsePoolSpecText(ISSUE_EXAMPLE);
  assert.equal(spec.name, 'desk');
  assert.deepEqual(spec.size, { max: 10, min: 4, spares: 2, warm: 0 });
  assert.deepEqual(spec.disks, { userData: '256M', disposable: '256M', swap: '64M' });
  assert.deepEqual(spec.customize.perChild, [{ path: '/usr/local/lib/vmfork/per-child/10-join.sh', args: { domain: 'corp.example' }, timeoutSeconds: 20 }]);
  assert.equal(spec.customize.machinePassword, true);
  assert.deepEqual(poolChildNames(spec).slice(0, 2), ['desk-001', 'desk-002']);
  assert.equal(poolChildNames(spec).length, 10);
});

test('defaults are applied once, and a parsed spec parses again to itself (JSON round trip)', () => {
  const spec = parsePoolSpec(MINIMAL);
  assert.deepEqual(spec, {
    name: 'lab',
    image: 'default',
    provisioning: 'up-front',
    persistent: false,
    size: { max: 3, min: 0, spares: 0, warm: 0 },
    naming: { pattern: 'lab-{n}' },
    network: 'default',
    disks: { disposable: '128M', swap: '32M' },
    customize: { common: [], perChild: [], machinePassword: false },
    stopOnError: true,
    release: { on: ['ttl'], graceSeconds: 30 },
    datastore: 'default',
  });
  assert.deepEqual(parsePoolSpec(JSON.parse(JSON.stringify(spec))), spec);
  assert.deepEqual(parsePoolSpecText(JSON.stringify(MINIMAL), 'json'), spec);
  assert.deepEqual(poolChildNames(spec), ['lab-1', 'lab-2', 'lab-3']);
  assert.ok(PoolSpecInputSchema.safeParse(spec).success, 'a spec with defaults is valid input');
});

test('unknown fields are rejected at every level, each at its own path', () => {
  rejects({ ...MINIMAL, colour: 'red' }, 'colour', /unknown field/);
  rejects({ ...MINIMAL, size: { max: 3, maximum: 4 } }, 'size.maximum', /unknown field/);
  rejects({ ...MINIMAL, customize: { common: [{ path: '/usr/local/lib/vmfork/a.sh', retries: 2 }] } }, 'customize.common[0].retries', /unknown field/);
});

test('every error names its field path; the message carries the first one', () => {
  rejects({ ...MINIMAL, size: { max: 2, min: 4 } }, 'size.max', /must be ≥ size.min \(4\)/);
  rejects({ ...MINIMAL, size: { max: 2, warm: 1 } }, 'size.warm', /only an on-demand pool/);
  rejects({ ...MINIMAL, provisioning: 'on-demand', size: { max: 2, warm: 3 } }, 'size.warm', /must be ≤ size.max/);
  rejects({ ...MINIMAL, name: 'Desk_1' }, 'name', /RFC 1123/);
  rejects({ image: 'default', size: { max: 1 }, disks: { disposable: '64M' } }, 'name', /required/);
  rejects({ ...MINIMAL, provisioning: 'lazy' }, 'provisioning', /up-front/);
  rejects({ ...MINIMAL, disks: { disposable: 'lots' } }, 'disks.disposable', /not a size like 256M/);
  rejects({ ...MINIMAL, disks: { disposable: '8M' } }, 'disks.disposable', /at least 16M/);
  rejects({ ...MINIMAL, disks: { disposable: '64M', swap: '60M' } }, 'disks.swap', /leave at least 16M/);
  assert.equal(parsePoolSpec({ ...MINIMAL, disks: { disposable: '64M' } }).disks.swap, '16M');
  rejects({ ...MINIMAL, size: { max: 0 } }, 'size.max', /.+/);
  rejects({ ...MINIMAL, cpus: 1.5 }, 'cpus', /.+/);
  rejects({ ...MINIMAL, access: { sshAuthorizedKeys: ['not a key'] } }, 'access.sshAuthorizedKeys[0]', /OpenSSH public key/);
  assert.throws(() => parsePoolSpec({ ...MINIMAL, size: { max: 2, min: 4 } }), { message: /pool spec: size\.max: must be ≥ size\.min/ });
  assert.throws(() => parsePoolSpecText('name: [unclosed'), { code: 'VMFORK_INVALID_ARGUMENT', message: /not valid YAML/ });
  assert.throws(() => parsePoolSpecText('name: a\nname: b\n'), { code: 'VMFORK_INVALID_ARGUMENT', message: /not valid YAML/ });
  rejects('just a string', '', /expected object/);
});

test('naming: {n} and {n:WIDTH} patterns, or a names list without duplicates and long enough', () => {
  assert.deepEqual(poolChildNames(parsePoolSpec({ ...MINIMAL, naming: { pattern: 'pc{n:2}-x' } })), ['pc01-x', 'pc02-x', 'pc03-x']);
  rejects({ ...MINIMAL, naming: { pattern: 'desk' } }, 'naming.pattern', /exactly one \{n\}/);
  rejects({ ...MINIMAL, naming: { pattern: '{n}-{n}' } }, 'naming.pattern', /found 2/);
  rejects({ ...MINIMAL, naming: { pattern: 'Desk-{n}' } }, 'naming.pattern', /lower-case/);
  rejects({ ...MINIMAL, naming: { pattern: '-{n}' } }, 'naming.pattern', /RFC 1123/);
  rejects({ ...MINIMAL, name: 'a'.repeat(62), size: { max: 10 } }, 'naming.pattern', /default ".*-\{n\}"/);
  rejects({ ...MINIMAL, naming: { names: ['a', 'b', 'a'] } }, 'naming.names[2]', /duplicate name "a" \(also naming.names\[0\]\)/);
  rejects({ ...MINIMAL, naming: { names: ['a', 'b'] } }, 'naming.names', /2 names for size.max 3/);
  rejects({ ...MINIMAL, naming: { names: ['a', 'b', 'c'], pattern: 'x{n}' } }, 'naming', /not both/);
  const listed = parsePoolSpec({ ...MINIMAL, naming: { names: ['w', 'x', 'y', 'z'] } });
  assert.deepEqual(poolChildNames(listed), ['w', 'x', 'y']);
  assert.deepEqual(poolChildNames(listed, 4), ['w', 'x', 'y', 'z']);
  assert.throws(() => poolChildNames(listed, 5), { code: 'VMFORK_INVALID_ARGUMENT', message: /naming.names: 4 names for 5 children/ });
});

test('hook paths are absolute under /usr/local/lib/vmfork/, with no way out of it', () => {
  assert.ok(parsePoolSpec({ ...MINIMAL, customize: { common: [{ path: '/usr/local/lib/vmfork/common/10-site.sh' }] } }));
  for (const path of ['/etc/passwd', 'common/10.sh', '/usr/local/lib/vmfork/../../../bin/sh', '/usr/local/lib/vmfork/a/./b', '/usr/local/lib/vmfork/a b', '/usr/local/lib/vmfork/', '/usr/local/lib/vmfork/x;rm']) {
    rejects({ ...MINIMAL, customize: { common: [{ path }] } }, 'customize.common[0].path', /under \/usr\/local\/lib\/vmfork\//);
  }
  rejects({ ...MINIMAL, customize: { perChild: [{ path: '/usr/local/lib/vmfork/j.sh', args: { '1x': 'a' } }] } }, 'customize.perChild[0].args.1x', /.+/);
  const spec = parsePoolSpec({ ...MINIMAL, customize: { perChild: [{ path: '/usr/local/lib/vmfork/j.sh', args: { n: 3, ok: true } }] } });
  assert.deepEqual(spec.customize.perChild[0]?.args, { n: '3', ok: 'true' });
});

test('a non-persistent pool must not ask for a user-data disk; a persistent one must', () => {
  rejects({ ...MINIMAL, disks: { userData: '256M', disposable: '128M' } }, 'disks.userData', /non-persistent/);
  rejects({ ...MINIMAL, persistent: true }, 'disks.userData', /persistent pool needs/);
});

test('phase1Digest keys on exactly what phase 1 depends on', () => {
  const base = applyPoolDefaults({ ...MINIMAL, persistent: true, disks: { userData: '256M', disposable: '128M' } });
  const d = phase1Digest(base, 'img-v1');
  assert.match(d, /^[0-9a-f]{64}$/);
  // not: name, size, naming, network, per-child hooks, stopOnError, memory; nor how a size is spelled
  assert.equal(phase1Digest({ ...base, name: 'other', size: { max: 9, min: 1, spares: 1 }, naming: { names: ['q'] }, network: 'lab', customize: { ...base.customize, perChild: [{ path: '/usr/local/lib/vmfork/j.sh', args: {}, timeoutSeconds: 5 }], machinePassword: true }, stopOnError: false, memory: '1G' } as PoolSpec, 'img-v1'), d);
  assert.equal(phase1Digest(applyPoolDefaults({ ...MINIMAL, persistent: true, disks: { userData: '0.25G', disposable: '131072K' } }), 'img-v1'), d);
  // yes: image version, persistent, each disk, common scripts, access
  assert.notEqual(phase1Digest(base, 'img-v2'), d);
  assert.notEqual(phase1Digest({ ...base, disks: { ...base.disks, swap: '16M' } }, 'img-v1'), d);
  assert.notEqual(phase1Digest({ ...base, customize: { ...base.customize, common: [{ path: '/usr/local/lib/vmfork/c.sh', timeoutSeconds: 300 }] } }, 'img-v1'), d);
  assert.notEqual(phase1Digest({ ...base, access: { sshAuthorizedKeys: ['ssh-ed25519 AAAA x'] } }, 'img-v1'), d);
  assert.notEqual(phase1Digest({ ...base, persistent: false }, 'img-v1'), d);
});

test('canonicalSize picks the largest exact binary unit', () => {
  assert.equal(canonicalSize('0.25G'), '256M');
  assert.equal(canonicalSize('256MiB'), '256M');
  assert.equal(canonicalSize('2048M'), '2G');
  assert.equal(canonicalSize('1536K'), '1536K');
  assert.equal(canonicalSize('100B'), '100B');
});

test('screen: a boolean, absent unless true (a spec without it keeps its JSON); its own template name; never pushed', () => {
  const plain = parsePoolSpec(MINIMAL);
  assert.equal('screen' in plain, false);
  assert.deepEqual(parsePoolSpec({ ...MINIMAL, screen: false }), plain, 'false is the default, and leaves no key');
  const withScreen = parsePoolSpec({ ...MINIMAL, screen: true });
  assert.equal(withScreen.screen, true);
  rejects({ ...MINIMAL, screen: 'yes' }, 'screen', /true or false/);
  // the replica (disks, phase 1) is shared; the template is not: the VGA device is in the machine a child loads
  assert.equal(phase1Digest(withScreen, 'img-v1'), phase1Digest(plain, 'img-v1'));
  assert.equal(replicaTemplateName('0123456789ab', plain), 'rt-0123456789ab-512m1c');
  assert.equal(replicaTemplateName('0123456789ab', withScreen), 'rt-0123456789ab-512m1c-vga');
  assert.deepEqual(pushProblems(plain, withScreen).map((p) => p.path), ['screen']);
  assert.deepEqual(pushProblems(withScreen, withScreen), []);
});
