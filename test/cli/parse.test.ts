import { test } from 'node:test';
import assert from 'node:assert/strict';
import { positiveInt } from '../../src/cli/parse.js';

test('positiveInt accepts whole numbers ≥ 1 and rejects the rest with VMFORK_INVALID_ARGUMENT', () => {
  assert.equal(positiveInt('1', '--count'), 1);
  assert.equal(positiveInt('20', '--count'), 20);
  for (const bad of ['0', '-1', '1.5', 'abc', '', '1e3', '0x10', ' ']) {
    assert.throws(() => positiveInt(bad, '--count'), { code: 'VMFORK_INVALID_ARGUMENT' }, bad);
  }
});
