import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERROR_CODES, ERROR_REGISTRY, VmforkError, isVmforkError, toVmforkError } from '../src/errors.js';

test('docs/errors.md lists exactly the registered codes', () => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const documented = [...doc.matchAll(/^\|\s*`(VMFORK_[A-Z0-9_]+)`/gm)].map((m) => m[1]).sort();
  assert.deepEqual(documented, [...ERROR_CODES].sort());
});

test('every code has a message and an HTTP status', () => {
  for (const code of ERROR_CODES) {
    const e = ERROR_REGISTRY[code];
    assert.ok(e.message.length > 0, code);
    assert.ok(e.status >= 400 && e.status < 600, code);
  }
});

test('VmforkError keeps code, status, detail and cause', () => {
  const cause = new Error('boom');
  const e = new VmforkError('VMFORK_VM_NOT_FOUND', 'no VM named "x"', { cause });
  assert.equal(e.code, 'VMFORK_VM_NOT_FOUND');
  assert.equal(e.status, 404);
  assert.equal(e.message, 'Unknown VM: no VM named "x"');
  assert.equal(e.cause, cause);
  assert.ok(isVmforkError(e));
  assert.ok(!isVmforkError(cause));
});

test('toVmforkError maps ENOSPC and wraps the rest', () => {
  const enospc = Object.assign(new Error('write failed'), { code: 'ENOSPC' });
  assert.equal(toVmforkError(enospc).code, 'VMFORK_NO_SPACE');
  const other = toVmforkError(new Error('x'));
  assert.equal(other.code, 'VMFORK_INTERNAL');
  assert.ok(other.cause instanceof Error);
});
