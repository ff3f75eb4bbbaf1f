/**
 * Forking children from a ready template: plan (checks, then names, addresses and records reserved in one
 * transaction), one child (resume + identity, rolled back alone on failure), and the batch under a concurrency
 * limit; warm processes (QEMUs waiting at -incoming defer) a fork takes when there are. The mechanism itself is
 * src/qemu/freeze-resume.ts.
 */
export { forkChildren, type ForkBatchOptions, type ForkBatchResult } from './batch.js';
export { forkChild, readyMsOf, registerChild, type ChildCustomizer, type ChildIdentityResult, type ForkChildOptions, type ForkedChild, type ForkTimings } from './child.js';
export { forkRegistered, warmRegistered } from './registered.js';
export { refreshChild, resetDisks, type RefreshOptions } from './refresh.js';
export { MAX_WARM, warmName, warmTemplate, type WarmOptions, type WarmResult } from './warm.js';
export { childSpec } from './child-spec.js';
export { assertMatchesTemplate, childNames, explicitNames, MAX_FORK_COUNT, planFork, type ForkPlan, type ForkRequest, type ReservedChild } from './plan.js';
export { type LazySource } from './child.js';
export { forkLazy, settleLazy, type LazyForkRequest, type SettledLazy } from './lazy.js';
export { startMemoryServer, type MemoryServer } from './serve.js';
