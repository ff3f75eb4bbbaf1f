import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ErrorCode } from '../../src/errors.js';
import { claimStateMachine, hostStateMachine, imageStateMachine, pushStateMachine, networkStateMachine, poolStateMachine, replicaStateMachine, taskStateMachine, templateStateMachine, vmStateMachine, TASK_FINAL_STATES, type StateMachine } from '../../src/state/index.js';

/**
 * Every (from, to) pair of every resource, spelled out: a change to a table must change its list here too, and
 * every move outside the table must fail with that resource's own code.
 */
const TABLES: { machine: StateMachine<string>; code: ErrorCode; states: number; allowed: string[]; transitional: string[] }[] = [
  {
    machine: vmStateMachine as StateMachine<string>,
    code: 'VMFORK_VM_STATE',
    states: 13,
    allowed: [
      'creating>registered', 'creating>warm', 'creating>starting', 'creating>forking', 'creating>failed', 'creating>destroying',
      'registered>warm', 'registered>forking', 'registered>destroying',
      'warm>forking', 'warm>failed', 'warm>destroying', 'warm>unknown',
      'starting>running', 'starting>failed', 'starting>stopping', 'starting>destroying',
      'forking>running', 'forking>failed', 'forking>destroying',
      'running>paused', 'running>stopping', 'running>stopped', 'running>failed', 'running>destroying', 'running>refreshing', 'running>unknown',
      'paused>running', 'paused>stopping', 'paused>stopped', 'paused>failed', 'paused>destroying', 'paused>refreshing', 'paused>unknown',
      'stopping>stopped', 'stopping>failed', 'stopping>destroying',
      'stopped>starting', 'stopped>destroying', 'stopped>refreshing',
      'failed>starting', 'failed>destroying', 'failed>refreshing',
      'refreshing>registered', 'refreshing>failed', 'refreshing>destroying',
      // a lost host's VM, said again by its agent when the host is back
      'unknown>running', 'unknown>paused', 'unknown>warm', 'unknown>stopped', 'unknown>failed', 'unknown>destroying',
      'destroying>destroying',
    ],
    transitional: ['creating', 'starting', 'forking', 'stopping', 'refreshing', 'destroying'],
  },
  {
    machine: templateStateMachine as StateMachine<string>,
    code: 'VMFORK_TEMPLATE_STATE',
    states: 7,
    allowed: [
      'creating>booting', 'creating>failed', 'creating>deleting',
      'booting>preparing', 'booting>failed', 'booting>deleting',
      'preparing>freezing', 'preparing>failed', 'preparing>deleting',
      'freezing>ready', 'freezing>failed', 'freezing>deleting',
      'ready>deleting',
      'failed>deleting',
      'deleting>deleting',
    ],
    transitional: ['creating', 'booting', 'preparing', 'freezing', 'deleting'],
  },
  {
    machine: networkStateMachine as StateMachine<string>,
    code: 'VMFORK_NETWORK_STATE',
    states: 3,
    allowed: ['creating>ready', 'creating>deleting', 'ready>deleting', 'deleting>deleting'],
    transitional: ['creating', 'deleting'],
  },
  {
    machine: imageStateMachine as StateMachine<string>,
    code: 'VMFORK_IMAGE_STATE',
    states: 3,
    allowed: ['importing>ready', 'importing>deleting', 'ready>deleting', 'deleting>deleting'],
    transitional: ['importing', 'deleting'],
  },
  {
    machine: poolStateMachine as StateMachine<string>,
    code: 'VMFORK_POOL_STATE',
    states: 4,
    allowed: ['provisioning>ready', 'provisioning>failed', 'provisioning>deleting', 'ready>provisioning', 'ready>deleting', 'failed>provisioning', 'failed>deleting', 'deleting>deleting'],
    transitional: ['provisioning', 'deleting'],
  },
  {
    machine: replicaStateMachine as StateMachine<string>,
    code: 'VMFORK_REPLICA_STATE',
    states: 3,
    allowed: ['creating>ready', 'creating>deleting', 'ready>deleting', 'deleting>deleting'],
    transitional: ['creating', 'deleting'],
  },
  {
    machine: claimStateMachine as StateMachine<string>,
    code: 'VMFORK_VM_NOT_CLAIMED',
    states: 3,
    allowed: ['unclaimed>claimed', 'unclaimed>releasing', 'claimed>releasing', 'claimed>unclaimed', 'releasing>unclaimed'],
    transitional: ['releasing'],
  },
  {
    machine: pushStateMachine as StateMachine<string>,
    code: 'VMFORK_POOL_STATE',
    states: 5,
    allowed: ['building>replacing', 'building>done', 'building>failed', 'replacing>waiting', 'replacing>done', 'replacing>failed', 'waiting>done', 'waiting>failed'],
    transitional: ['building', 'replacing'],
  },
  {
    machine: taskStateMachine as StateMachine<string>,
    code: 'VMFORK_TASK_STATE',
    states: 6,
    allowed: [
      'queued>running', 'queued>cancelled', 'queued>failed',
      'running>succeeded', 'running>failed', 'running>cancelling',
      'cancelling>cancelled', 'cancelling>failed', 'cancelling>succeeded',
    ],
    transitional: ['queued', 'running', 'cancelling'],
  },
  {
    machine: hostStateMachine as StateMachine<string>,
    code: 'VMFORK_HOST_STATE',
    states: 3,
    // up>up: an agent's heartbeat (and its restart after a crash no heartbeat caught)
    allowed: ['up>up', 'up>lost', 'up>down', 'lost>up', 'lost>down', 'down>up'],
    transitional: [],
  },
];

for (const { machine, code, states, allowed, transitional } of TABLES) {
  test(`${machine.resource} transition table: every pair, illegal moves are ${code}`, () => {
    assert.equal(machine.states.length, states);
    const ok = new Set(allowed);
    for (const from of machine.states) {
      for (const to of machine.states) {
        const key = `${from}>${to}`;
        assert.equal(machine.canTransition(from, to), ok.has(key), key);
        if (ok.has(key)) machine.assertTransition(from, to, 'x1');
        else assert.throws(() => machine.assertTransition(from, to, 'x1'), { code, message: new RegExp(`x1 is ${from}; cannot become ${to}`) }, key);
      }
    }
    assert.deepEqual(machine.states.filter((s) => machine.isTransitional(s)), transitional);
  });

  // a task is a record of what happened, not a resource: it has no removal state (see the task test below)
  // nor are a claim (it ends by going back to `unclaimed`) and a push (a record of an operation, on its pool)
  // nor is a host: it is removed by its operator, in any state, not moved out through a state of its own
  if ([taskStateMachine, claimStateMachine, pushStateMachine, hostStateMachine].includes(machine as never)) continue;
  test(`${machine.resource}: every state can reach the way out (removal), so nothing is stuck for ever`, () => {
    const exit = machine.states.find((s) => s === 'destroying' || s === 'deleting');
    assert.ok(exit);
    for (const s of machine.states) assert.ok(machine.canTransition(s, exit), s);
  });
}

test('a ready template can only be deleted: its files are immutable', () => {
  assert.deepEqual(templateStateMachine.table.ready, ['deleting']);
});

test('a task ends for ever: every live state can fail, an ended task never moves again', () => {
  for (const s of taskStateMachine.states) {
    if (TASK_FINAL_STATES.includes(s)) assert.deepEqual(taskStateMachine.table[s], [], s);
    else assert.ok(taskStateMachine.canTransition(s, 'failed'), s);
  }
});
