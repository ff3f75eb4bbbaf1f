import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertValidName, isValidName } from '../../src/util/names.js';

test('RFC 1123 labels', () => {
  for (const ok of ['a', 'vm1', 'child-001', 'a'.repeat(63), '0abc']) assert.ok(isValidName(ok), ok);
  for (const bad of ['', '-a', 'a-', 'A', 'a_b', 'a.b', 'a'.repeat(64), 'ä', 'a b']) assert.ok(!isValidName(bad), bad);
  assert.throws(() => assertValidName('Bad_Name', 'VM'), { code: 'VMFORK_INVALID_NAME' });
});
