import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERROR_CODES, ERROR_REGISTRY, VmforkError, isVmforkError, toVmforkError, withContext } from '../src/errors.js';

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

test('withContext adds context once: the registry message is never repeated, the code and cause are kept', () => {
  const inner = new VmforkError('VMFORK_QMP_TIMEOUT', 'waited 60000 ms for run state paused', { details: { socketPath: '/x' } });
  const once = withContext(inner, 'child web-1');
  assert.equal(once.message, 'A QEMU monitor command timed out: child web-1: waited 60000 ms for run state paused');
  assert.equal(once.code, 'VMFORK_QMP_TIMEOUT');
  assert.equal(once.cause, inner);
  assert.deepEqual(once.details, { socketPath: '/x' });
  // wrapping twice still says the registry message once, with both contexts in order
  const twice = withContext(once, 'template web', { details: { template: 'web' } });
  assert.equal(twice.message, 'A QEMU monitor command timed out: template web: child web-1: waited 60000 ms for run state paused');
  assert.equal(twice.details?.template, 'web');
  const exists = withContext(new VmforkError('VMFORK_NETWORK_EXISTS', 'a network named "default" already exists'), 'template web');
  assert.equal(exists.message, 'A network with this name already exists: template web: a network named "default" already exists');
});

test('withContext: a plain or internal failure takes the fallback code; a suffix goes after the detail', () => {
  const plain = withContext(new Error('socket hang up'), 'child c1', { fallback: 'VMFORK_FORK_FAILED', suffix: '\n--- QEMU stderr ---\nboom' });
  assert.equal(plain.code, 'VMFORK_FORK_FAILED');
  assert.equal(plain.message, 'Forking a child failed: child c1: socket hang up\n--- QEMU stderr ---\nboom');
  assert.equal(withContext(new VmforkError('VMFORK_INTERNAL', 'x'), 'c', { fallback: 'VMFORK_FORK_FAILED' }).code, 'VMFORK_FORK_FAILED');
  assert.equal(withContext(new VmforkError('VMFORK_AGENT_ERROR', 'x'), 'c', { fallback: 'VMFORK_FORK_FAILED' }).code, 'VMFORK_AGENT_ERROR');
  assert.equal(withContext(new VmforkError('VMFORK_INTERNAL'), 'c').message, 'Internal error: c');
});
