/**
 * Phase 1 of a pool (the patent's first set of customizations): everything common to the pool that may need
 * reboots — data disks, mounts, authorized keys, the pool's common scripts — applied ONCE to an internal clone.
 */
export { checkDiskLayout, dataDisks, DISPOSABLE_DISK, USER_DATA_DISK, type DiskLayout } from './disks.js';
export { runPhase1, type Phase1Progress, type Phase1Result, type Phase1Spec } from './phase1.js';
export { MAX_REBOOTS_PER_SCRIPT, REBOOT_EXIT_CODE, type CommonScript } from './scripts.js';
