import assert from 'node:assert/strict';
import { parsePoolSpec, type SpecProblem } from '../../src/pool/spec.js';

/** The problems a refused spec names (VMFORK_INVALID_ARGUMENT); a spec accepted fails the test. */
export function problems(value: unknown): SpecProblem[] {
  try {
    parsePoolSpec(value);
  } catch (err) {
    assert.equal((err as { code: string }).code, 'VMFORK_INVALID_ARGUMENT');
    return (err as { details: { problems: SpecProblem[] } }).details.problems;
  }
  assert.fail('the spec was accepted');
}
