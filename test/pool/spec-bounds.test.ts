import { test } from 'node:test';
import assert from 'node:assert/strict';
import { batches } from '../../src/pool/converge.js';
import { hostBoundProblems, type HostLimits } from '../../src/pool/host-bounds.js';
import type { z } from 'zod';
import { ClaimRequestSchema, MAX_CLAIM_WAIT_SECONDS, MAX_TTL_SECONDS, ResizeRequestSchema, zodProblems } from '../../src/pool/index.js';
import { parsePoolSpec, type SpecProblem } from '../../src/pool/spec.js';
import { MAX_FORK_COUNT } from '../../src/fork/index.js';
import { problems } from './spec-problems.js';
import { checkCpus } from '../../src/vm/index.js';

const MINIMAL = { name: 'lab', image: 'default', size: { max: 3 }, disks: { disposable: '128M' } };
const hook = (over: object): object => ({ customize: { perChild: [{ path: '/usr/local/lib/vmfork/p.sh', ...over }] } });

// [what, the spec's fields over MINIMAL, the field path, the message]: every error names its bound
const STATIC: [string, object, string, string | RegExp][] = [
  ['size.max past the cap', { size: { max: 100_000 } }, 'size.max', 'at most 10000'],
  ['size.max zero', { size: { max: 0 } }, 'size.max', 'at least 1'],
  ['size.max a fraction', { size: { max: 1.5 } }, 'size.max', 'must be a whole number'],
  ['size.max a string', { size: { max: '3' } }, 'size.max', 'must be a whole number'],
  ['size.min negative', { size: { max: 3, min: -1 } }, 'size.min', 'at least 0'],
  ['size.spares past the cap', { size: { max: 3, spares: 10_001 } }, 'size.spares', 'at most 10000'],
  ['size.warm past the cap', { size: { max: 3, warm: 1e9 } }, 'size.warm', 'at most 10000'],
  ['cpus 1000', { cpus: 1000 }, 'cpus', 'at most 255'],
  ['cpus 0', { cpus: 0 }, 'cpus', 'at least 1'],
  ['memory 2T', { memory: '2T' }, 'memory', 'at most 1T'],
  ['memory 32M', { memory: '32M' }, 'memory', 'at least 64M'],
  ['disposable 100T', { disks: { disposable: '100T' } }, 'disks.disposable', 'at most 64T'],
  ['disposable 8M', { disks: { disposable: '8M' } }, 'disks.disposable', 'at least 16M'],
  ['a size string of 40 characters', { disks: { disposable: `${'1'.repeat(39)}M` } }, 'disks.disposable', 'at most 32 characters'],
  ['common timeout 1e9', { customize: { common: [{ path: '/usr/local/lib/vmfork/c.sh', timeoutSeconds: 1e9 }] } }, 'customize.common[0].timeoutSeconds', 'at most 3600'],
  ['perChild timeout 0', hook({ timeoutSeconds: 0 }), 'customize.perChild[0].timeoutSeconds', 'at least 1'],
  ['perChild timeout a fraction', hook({ timeoutSeconds: 2.5 }), 'customize.perChild[0].timeoutSeconds', 'must be a whole number of seconds'],
  ['an arg value of 4097 bytes', hook({ args: { a: 'x'.repeat(4097) } }), 'customize.perChild[0].args.a', 'at most 4096 bytes'],
  ['an arg value of 2049 two-byte characters', hook({ args: { a: 'é'.repeat(2049) } }), 'customize.perChild[0].args.a', 'at most 4096 bytes'],
  ['an arg value with NUL', hook({ args: { a: 'a\0b' } }), 'customize.perChild[0].args.a', 'must not contain NUL'],
  ['an arg number past 2^53', hook({ args: { a: 2 ** 60 } }), 'customize.perChild[0].args.a', /must be a string, number or boolean|too big|at most/i],
  ['65 args', hook({ args: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`a${i}`, 'v'])) }), 'customize.perChild[0].args', 'at most 64 arguments'],
  ['101 hooks', { customize: { common: Array.from({ length: 101 }, () => ({ path: '/usr/local/lib/vmfork/c.sh' })) } }, 'customize.common', 'at most 100 hooks'],
  ['graceSeconds 1e6', { release: { graceSeconds: 1e6 } }, 'release.graceSeconds', 'at most 86400'],
  ['a pattern of 81 characters', { naming: { pattern: `${'a'.repeat(77)}-{n}` } }, 'naming.pattern', 'at most 80 characters'],
  ['an ssh key line of 17K', { access: { sshAuthorizedKeys: [`ssh-ed25519 ${'A'.repeat(17 * 1024)}`] } }, 'access.sshAuthorizedKeys[0]', 'at most 16384 characters'],
];

for (const [what, over, path, message] of STATIC) {
  test(`static bound: ${what} → ${path}`, () => {
    const found = problems({ ...MINIMAL, ...over }).find((p) => p.path === path);
    assert.ok(found, `a problem at ${path}: ${JSON.stringify(problems({ ...MINIMAL, ...over }))}`);
    if (typeof message === 'string') assert.equal(found.message, message);
    else assert.match(found.message, message);
  });
}

test('static bounds: values at the bound are accepted', () => {
  const spec = parsePoolSpec({
    ...MINIMAL,
    size: { max: 10_000 },
    cpus: 255,
    memory: '1T',
    disks: { disposable: '64T' },
    customize: { perChild: [{ path: '/usr/local/lib/vmfork/p.sh', timeoutSeconds: 3600, args: { a: 'x'.repeat(4096), b: 2 ** 53 - 1 } }] },
    release: { graceSeconds: 86_400 },
  });
  assert.equal(spec.size.max, 10_000);
  assert.equal(spec.customize.perChild[0]?.args.a?.length, 4096);
});

test('resize and claim requests name their bounds', () => {
  const cases: [z.ZodType, unknown, SpecProblem[]][] = [
    [ResizeRequestSchema, { max: 100_000 }, [{ path: 'max', message: 'at most 10000' }]],
    [ResizeRequestSchema, { max: 0.5 }, [{ path: 'max', message: 'must be a whole number' }]],
    [ClaimRequestSchema, { ttlSeconds: 1e9 }, [{ path: 'ttlSeconds', message: `at most ${MAX_TTL_SECONDS}` }]],
    [ClaimRequestSchema, { waitSeconds: 1e9 }, [{ path: 'waitSeconds', message: `at most ${MAX_CLAIM_WAIT_SECONDS}` }]],
    [ClaimRequestSchema, { ttlSeconds: 'x' }, [{ path: 'ttlSeconds', message: 'must be a whole number of seconds' }]],
  ];
  for (const [schema, body, expected] of cases) {
    const r = schema.safeParse(body);
    assert.deepEqual(zodProblems(r.error?.issues ?? []), expected, JSON.stringify(body));
  }
});

const HOST: HostLimits = { memoryMiB: 2048 + 300, cpus: 2, datastoreBytes: 10 * 1024 ** 3 + 5 };

// [what, the spec's fields over MINIMAL, host, the problems]: bounds that depend on the host
const HOSTED: [string, object, HostLimits, SpecProblem[]][] = [
  ['within every bound', { memory: '2G', cpus: 2, disks: { disposable: '10G' } }, HOST, []],
  ['memory past the host\'s RAM', { memory: '4G' }, HOST, [{ path: 'memory', message: 'at most 2G (this host\'s RAM)' }]],
  ['the default memory past a tiny host', {}, { ...HOST, memoryMiB: 300 }, [{ path: 'memory', message: 'at most 300M (this host\'s RAM); the default is 512M' }]],
  ['cpus 64 on a 2-CPU host', { cpus: 64 }, HOST, [{ path: 'cpus', message: 'at most 2 (this host\'s CPUs)' }]],
  ['a disposable disk past the datastore', { disks: { disposable: '11G' } }, HOST, [{ path: 'disks.disposable', message: 'at most 10G (the size of datastore default)' }]],
  ['a user-data disk past the datastore', { persistent: true, disks: { disposable: '1G', userData: '20G' } }, HOST, [{ path: 'disks.userData', message: 'at most 10G (the size of datastore default)' }]],
  ['all at once', { memory: '1T', cpus: 3, disks: { disposable: '1T' } }, HOST, [
    { path: 'memory', message: 'at most 2G (this host\'s RAM)' },
    { path: 'cpus', message: 'at most 2 (this host\'s CPUs)' },
    { path: 'disks.disposable', message: 'at most 10G (the size of datastore default)' },
  ]],
];

for (const [what, over, host, expected] of HOSTED) {
  test(`host bound: ${what}`, () => {
    assert.deepEqual(hostBoundProblems(parsePoolSpec({ ...MINIMAL, ...over }), host), expected);
  });
}

test('batches: a pool larger than one fork batch is forked in runs of at most MAX_FORK_COUNT', () => {
  assert.equal(MAX_FORK_COUNT, 256);
  const names = Array.from({ length: 600 }, (_, i) => `d-${i}`);
  assert.deepEqual(batches(names).map((b) => b.length), [256, 256, 88]);
  assert.deepEqual(batches(names).flat(), names);
  assert.deepEqual(batches([]), []);
  assert.deepEqual(batches(names.slice(0, 256)).map((b) => b.length), [256]);
});

test('--cpus of vm boot and template create: at most this host\'s CPUs (and 64)', () => {
  assert.equal(checkCpus(2, 2), 2);
  assert.equal(checkCpus(undefined, 2), 1);
  assert.throws(() => checkCpus(3, 2), { code: 'VMFORK_INVALID_ARGUMENT', message: /--cpus: a whole number from 1 to 2 \(this host's CPUs\), got 3/ });
  assert.throws(() => checkCpus(65, 128), { code: 'VMFORK_INVALID_ARGUMENT', message: /from 1 to 64, got 65/ });
  assert.throws(() => checkCpus(1.5, 2), { code: 'VMFORK_INVALID_ARGUMENT' });
});
