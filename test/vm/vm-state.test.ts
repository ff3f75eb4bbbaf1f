import { test } from 'node:test';
import assert from 'node:assert/strict';
import { vmStateMachine, type VmState } from '../../src/vm/vm-state.js';

// Every (from, to) pair, spelled out: a change to the table must change this list too.
const ALLOWED = new Set<string>([
  'creating>starting', 'creating>forking', 'creating>failed', 'creating>destroying',
  'starting>running', 'starting>failed', 'starting>stopping', 'starting>destroying',
  'forking>running', 'forking>failed', 'forking>destroying',
  'running>paused', 'running>stopping', 'running>stopped', 'running>failed', 'running>destroying',
  'paused>running', 'paused>stopping', 'paused>stopped', 'paused>failed', 'paused>destroying',
  'stopping>stopped', 'stopping>failed', 'stopping>destroying',
  'stopped>starting', 'stopped>destroying',
  'failed>starting', 'failed>destroying',
  'destroying>destroying',
]);

test('VM transition table: every pair', () => {
  const states = vmStateMachine.states;
  assert.equal(states.length, 9);
  for (const from of states) {
    for (const to of states) {
      const key = `${from}>${to}`;
      assert.equal(vmStateMachine.canTransition(from, to), ALLOWED.has(key), key);
      if (ALLOWED.has(key)) {
        vmStateMachine.assertTransition(from, to, 'vm1');
      } else {
        assert.throws(() => vmStateMachine.assertTransition(from, to, 'vm1'), { code: 'VMFORK_VM_STATE' });
      }
    }
  }
});

test('every state can reach destroying', () => {
  for (const s of vmStateMachine.states) assert.ok(vmStateMachine.canTransition(s as VmState, 'destroying'), s);
});
