import { VmforkError, type ErrorCode } from '../errors.js';

/** A transition table: for each state, the states it may move to. One table per resource, nowhere else. */
export type TransitionTable<S extends string> = Readonly<Record<S, readonly S[]>>;

export interface StateMachineDefinition<S extends string> {
  /** Resource name as users read it: `VM`, `template`, `network`, `image`. */
  resource: string;
  /** The one code every illegal or lost transition of this resource is reported with. */
  errorCode: ErrorCode;
  table: TransitionTable<S>;
  /**
   * States an operation passes through (as opposed to states a resource rests in). A row in one of them records
   * its owner process; when that process is gone, the next vmfork command heals the row (src/heal/).
   */
  transitional: readonly S[];
}

export interface StateMachine<S extends string> extends StateMachineDefinition<S> {
  readonly states: readonly S[];
  canTransition(from: S, to: S): boolean;
  /** Throws the resource's error code when the move is not in the table. */
  assertTransition(from: S, to: S, name: string): void;
  isState(value: string): value is S;
  isTransitional(state: S): boolean;
}

export function defineStateMachine<S extends string>(def: StateMachineDefinition<S>): StateMachine<S> {
  const states = Object.keys(def.table) as S[];
  return {
    ...def,
    states,
    canTransition: (from, to) => def.table[from].includes(to),
    assertTransition(from, to, name) {
      if (!def.table[from].includes(to)) {
        throw new VmforkError(def.errorCode, `${def.resource} ${name} is ${from}; cannot become ${to}`, {
          details: { resource: def.resource, name, from, to, allowed: def.table[from] },
        });
      }
    },
    isState: (value): value is S => (states as string[]).includes(value),
    isTransitional: (state) => def.transitional.includes(state),
  };
}
