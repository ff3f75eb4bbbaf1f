/**
 * The identity pipeline's public surface: what the fork engine and the API use. Two paths, one verification: the
 * identity script through qemu-ga (`applyIdentity`) and vmfork-guest's CONFIG (`applyIdentityThroughAgent`).
 */
export { AGENT_CLOCK_CORRECT_MS, applyIdentityThroughAgent, withKicks, type AgentForkTicket, type AgentIdentity, type IdentityAgentPort } from './agent-path.js';
export { applyIdentity, RANDOM_SEED_BYTES, RNG_ENTROPY_BYTES, type ApplyIdentityOptions, type IdentityAgent } from './apply-identity.js';
export { IDENTITY_STEPS, IDENTITY_STEP_NAMES } from './pipeline.js';
export { newMachineId, validateIdentity, isValidHostname } from './validate.js';
export type { ChildIdentity, GuestFacts, IdentityReport, IdentityStep, IdentityStepResult, NormalizedIdentity } from './types.js';
export { sshFingerprint } from './ssh-step.js';
