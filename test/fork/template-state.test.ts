import { test } from 'node:test';
import assert from 'node:assert/strict';
import { templateStateMachine } from '../../src/fork/template-state.js';

const ALLOWED = new Set<string>([
  'creating>booting', 'creating>failed', 'creating>deleting',
  'booting>preparing', 'booting>failed', 'booting>deleting',
  'preparing>freezing', 'preparing>failed', 'preparing>deleting',
  'freezing>ready', 'freezing>failed', 'freezing>deleting',
  'ready>deleting',
  'failed>deleting',
  'deleting>deleting',
]);

test('template transition table: every pair', () => {
  assert.equal(templateStateMachine.states.length, 7);
  for (const from of templateStateMachine.states) {
    for (const to of templateStateMachine.states) {
      const key = `${from}>${to}`;
      assert.equal(templateStateMachine.canTransition(from, to), ALLOWED.has(key), key);
    }
  }
});

test('a ready template can only be deleted: its files are immutable', () => {
  assert.deepEqual(templateStateMachine.table.ready, ['deleting']);
});
