/**
 * A pool's two customization phases. Phase 1 (the patent's first set of customizations): everything common to the
 * pool that may need reboots — data disks, mounts, authorized keys, the pool's common scripts — applied ONCE to an
 * internal clone. Phase 2: each forked child's per-child hooks and machine password, live, after its identity.
 */
export { dataDisks, DISPOSABLE_DISK, USER_DATA_DISK, type DiskLayout } from './disks.js';
export { runPhase1 } from './phase1.js';
export { machinePasswordMatches, poolCustomizer } from './phase2.js';
