import { VmforkError } from '../errors.js';

/** A transition table: for each state, the states it may move to. One table per resource, nowhere else. */
export type TransitionTable<S extends string> = Readonly<Record<S, readonly S[]>>;

export interface StateMachine<S extends string> {
  readonly states: readonly S[];
  readonly table: TransitionTable<S>;
  canTransition(from: S, to: S): boolean;
  /** Throws VMFORK_VM_STATE (or the given code's resource wording) when the move is not in the table. */
  assertTransition(from: S, to: S, what: string): void;
  isState(value: string): value is S;
}

export function defineStateMachine<S extends string>(resource: string, table: TransitionTable<S>): StateMachine<S> {
  const states = Object.keys(table) as S[];
  return {
    states,
    table,
    canTransition: (from, to) => table[from].includes(to),
    assertTransition(from, to, what) {
      if (!table[from].includes(to)) {
        throw new VmforkError('VMFORK_VM_STATE', `${resource} ${what} is ${from}; cannot become ${to}`, {
          details: { resource, name: what, from, to, allowed: table[from] },
        });
      }
    },
    isState: (value): value is S => (states as string[]).includes(value),
  };
}
