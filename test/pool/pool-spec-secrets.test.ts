import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePoolSpec, type SpecProblem } from '../../src/pool/index.js';

const BASE = { name: 'lab', image: 'default', size: { max: 2 }, disks: { disposable: '128M' } };
const HOOK = { path: '/usr/local/lib/vmfork/per-child/10-record.sh' };

test('machinePassword without a perChild hook is refused, saying the password would never be delivered', () => {
  assert.throws(() => parsePoolSpec({ ...BASE, customize: { machinePassword: true } }), (err: { code: string; message: string; details: { problems: SpecProblem[] } }) => {
    assert.equal(err.code, 'VMFORK_INVALID_ARGUMENT');
    assert.match(err.message, /pool spec: customize\.machinePassword: needs a customize\.perChild hook/);
    const [problem, ...rest] = err.details.problems;
    assert.deepEqual(rest, []);
    assert.equal(problem?.path, 'customize.machinePassword');
    assert.match(problem?.message ?? '', /handed only to perChild hooks .* never delivered/);
    return true;
  });
  // common hooks do not count: phase 1 runs once for the replica, before any child has a password
  assert.throws(() => parsePoolSpec({ ...BASE, customize: { common: [HOOK], machinePassword: true } }), { code: 'VMFORK_INVALID_ARGUMENT' });
});

test('machinePassword with a perChild hook, or perChild hooks without a password, are accepted', () => {
  assert.equal(parsePoolSpec({ ...BASE, customize: { perChild: [HOOK], machinePassword: true } }).customize.machinePassword, true);
  assert.equal(parsePoolSpec({ ...BASE, customize: { perChild: [HOOK] } }).customize.machinePassword, false);
  assert.equal(parsePoolSpec({ ...BASE, customize: { machinePassword: false } }).customize.machinePassword, false);
});
