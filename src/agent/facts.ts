import type { AgentReport, AgentStep } from './messages.js';

/** step → key → every value, in order: the shape src/identity parses the shell pipeline's output into. */
export type AgentStepOutput = ReadonlyMap<string, ReadonlyMap<string, readonly string[]>>;

/** Name of the guest-wide block (boot_id), as the shell pipeline calls it. */
export const GUEST_FACTS_BLOCK = 'guest';

/**
 * A REPORT in the shape the shell identity pipeline's output is parsed into, so both paths go through the same
 * per-step verification: each step's facts, plus `rc` (0 when the step succeeded, else 1), `ms` (from the agent's
 * microseconds) and `stderr` (its failure detail), and a `guest` block with the boot id.
 */
export function agentStepOutput(report: Pick<AgentReport, 'steps' | 'bootId'>): AgentStepOutput {
  const out = new Map<string, Map<string, string[]>>();
  const add = (step: string, key: string, value: string): void => {
    let facts = out.get(step);
    if (!facts) out.set(step, (facts = new Map()));
    const values = facts.get(key);
    if (values) values.push(value);
    else facts.set(key, [value]);
  };
  for (const s of report.steps) {
    for (const f of s.facts) add(s.step, f.key, f.value);
    add(s.step, 'rc', s.ok ? '0' : '1');
    add(s.step, 'ms', String(Math.round(s.us / 1000)));
    if (!s.ok && s.detail) add(s.step, 'stderr', s.detail);
  }
  add(GUEST_FACTS_BLOCK, 'boot_id', report.bootId);
  return out;
}

/** The values of one fact of one step (e.g. `ssh-host-keys` / `pubkey`). */
export function stepFacts(step: AgentStep | undefined, key: string): string[] {
  return step ? step.facts.filter((f) => f.key === key).map((f) => f.value) : [];
}
