/**
 * A pool's two customization phases. Phase 1 (the patent's first set of customizations): everything common to the
 * pool that may need reboots — data disks, mounts, authorized keys, the pool's common scripts — applied ONCE to an
 * internal clone. Phase 2: each forked child's per-child hooks and machine password, live, after its identity.
 */
export { checkDiskLayout, dataDisks, DISPOSABLE_DISK, USER_DATA_DISK, type DiskLayout } from './disks.js';
export { runPhase1, type Phase1Progress, type Phase1Result, type Phase1Spec } from './phase1.js';
export { MAX_REBOOTS_PER_SCRIPT, REBOOT_EXIT_CODE, type CommonScript } from './scripts.js';
export { hashMachinePassword, hookArgs, hooksRunner, machinePasswordMatches, newMachinePassword, poolCustomizer, type Phase2Spec, type PerChildHook } from './phase2.js';
