/** A child a converge could not make, as its result and a host's part name it: the error's code and first line. */
export interface ChildFailure {
  name: string;
  code: string;
  message: string;
}

export function childFailure(name: string, err: { code: string; message: string }): ChildFailure {
  return { name, code: err.code, message: err.message.split('\n')[0] ?? '' };
}

/** What a converge answers (its task's result), on one host or over the fleet's hosts. */
export interface ConvergeResult {
  replica: string;
  replicaReused: boolean;
  /** Reboots phase 1 went through when the replica was made (by this task or the one that made it). */
  phase1Reboots: number | null;
  template: string;
  forked: string[];
  /** Milliseconds from the start of each forked child's fork to ready (identity and phase 2 done). */
  readyMs: Record<string, number>;
  registered: string[];
  removed: string[];
  failed: ChildFailure[];
  /** Wall time of each step of this converge, in ms (the replica's is ~0 when it was reused). */
  ms: { replica: number; template: number; children: number };
}

/** A converge of a pool placed over hosts (placed.ts) also says where its children are and what it copied. */
export interface PlacedResult extends ConvergeResult {
  /** The pool's children per host once converged, and the replica each host forked them from. */
  hosts: Record<string, { children: number; replica: string | null }>;
  /** Replica copies made by this converge (host → seconds), run at once. */
  copies: Record<string, number>;
  /**
   * Per host that got children: from the start of its part (its replica copy, when it needed one) to its first
   * ready child, in ms; `lazy` when that child came from another host's template (docs/lazy-replicas.md).
   */
  firstReady: Record<string, { ms: number | null; lazy: boolean; fromHost?: string; skipped?: string; settled?: Record<string, unknown> }>;
}
