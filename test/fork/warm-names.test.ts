import { test } from 'node:test';
import assert from 'node:assert/strict';
import { childNames, warmName } from '../../src/fork/index.js';
import { isValidName } from '../../src/util/index.js';

test('warm process names are labels a child\'s {n} numbering never takes for one of its own', () => {
  const w = warmName('tpl');
  assert.match(w, /^tpl-warm-[0-9a-f]{6}$/);
  assert.ok(isValidName(warmName('t'.repeat(63))), 'a long template name is cut to fit a label');
  assert.notEqual(warmName('tpl'), warmName('tpl'));
  assert.deepEqual(childNames('tpl-{n}', 2, new Set([w, 'tpl-3'])), ['tpl-4', 'tpl-5']);
});
