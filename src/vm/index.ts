/**
 * One VM's life, whatever its role (a cold-booted VM, a template's parent, a forked child): records, QEMU
 * processes, cold boot, start, stop, destroy, reconciliation with reality, and reading facts inside the guest.
 */
export { checkpointVm, planCheckpoint, type CheckpointOptions, type CheckpointResult } from './checkpoint.js';
export { listVmCheckpoints, planRevert, revertVm, type RevertResult } from './checkpoint-revert.js';
export { assertVmStateFor, checkLabel, CHECKPOINT_FROM, defaultLabel, REVERT_FROM } from './checkpoint-rules.js';
export { forgetCheckpoints } from './checkpoint-files.js';
export { promoteVm, type PromoteOptions, type PromoteResult } from './promote.js';
export { planPromote, PROMOTE_FROM, type PromoteRequest } from './promote-plan.js';
export { bootVm, checkCpus, type BootOptions, type BootResult } from './boot.js';
export { CONSOLE_STATES, vmConsoleSocket, vmScreenSocket } from './console-target.js';
export { listVmSummaries, showVm, vmSummary } from './describe.js';
export { guestFactsScript, parseSections, readGuestFacts, readGuestIdentity, type GuestFact, type GuestFactsOptions, type GuestFactsReadout, type GuestIdentity } from './guest-facts.js';
export { healVm } from './heal.js';
export { imageBootSource, screenCmdline, type BootSource } from './image-boot.js';
export { connectAgent, destroyVm, getVmReconciled, listVmsReconciled, reconcileVm } from './lifecycle.js';
export { serialTail } from './serial-log.js';
export { serialLogCap, startSerialLogger } from './serial-logger.js';
export { startVm } from './start.js';
export { stopVm, type StopOptions } from './stop.js';
export { assertVmHere, hereHost, type VmDeps } from './vm-deps.js';
export { diskFile, SCREEN_VGA_MEM_MIB, vmChannels, vmPaths, vmPathsIn, type VmChannels, type VmPaths } from './vm-paths.js';
export { startVmProcess } from './vm-process.js';
export { describeTeardown, killVmQemu, rollbackVm, stopStrayQemu, teardownVm, type Teardown } from './vm-record.js';
export { sshArgv, sshTarget, type SshTarget } from './ssh.js';
export { resumeVm, suspendVm, SUSPEND_LABEL, type ResumeResult, type SuspendResult } from './suspend.js';
export { reconcileUnknownVms } from './unknown.js';
