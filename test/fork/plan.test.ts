import { test } from 'node:test';
import assert from 'node:assert/strict';
import { childNames } from '../../src/fork/plan.js';
import { parseQ35Alias } from '../../src/host/qemu-build.js';

test('{n} numbering continues after existing names', () => {
  assert.deepEqual(childNames('web-{n}', 3, new Set()), ['web-1', 'web-2', 'web-3']);
  assert.deepEqual(childNames('web-{n}', 2, new Set(['web-1', 'web-7', 'other-9'])), ['web-8', 'web-9']);
  assert.deepEqual(childNames('n{n}x', 1, new Set(['n3x'])), ['n4x']);
});

test('a pattern without {n} works for one child and is a duplicate for more', () => {
  assert.deepEqual(childNames('solo', 1, new Set()), ['solo']);
  assert.throws(() => childNames('solo', 2, new Set()), { code: 'VMFORK_VM_EXISTS' });
  assert.throws(() => childNames('solo', 1, new Set(['solo'])), { code: 'VMFORK_VM_EXISTS' });
});

test('names must be RFC 1123 labels (they become hostnames)', () => {
  assert.throws(() => childNames('Web_{n}', 1, new Set()), { code: 'VMFORK_INVALID_NAME' });
  assert.throws(() => childNames(`${'a'.repeat(63)}{n}`, 1, new Set()), { code: 'VMFORK_INVALID_NAME' });
  assert.throws(() => childNames('-{n}', 1, new Set()), { code: 'VMFORK_INVALID_NAME' });
});

test('the versioned machine behind q35 is read from -machine help', () => {
  const help = 'Supported machines are:\nq35                  Standard PC (Q35 + ICH9, 2009) (alias of pc-q35-7.2)\npc-q35-7.2           Standard PC (Q35 + ICH9, 2009)\n';
  assert.equal(parseQ35Alias(help), 'pc-q35-7.2');
  assert.throws(() => parseQ35Alias('pc   Standard PC (alias of pc-i440fx-7.2)\n'), { code: 'VMFORK_QEMU_MISSING' });
});
