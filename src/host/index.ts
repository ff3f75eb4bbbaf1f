/** Facts about the host and checks against it: accelerator policy, capacity, processes, QEMU programs, doctor. */
export { ACCEL_CHOICES, detectAccel, parseAccelChoice, readHostFacts, type Accel, type AccelChoice, type AccelDecision, type HostFacts } from './accel.js';
export { availableMemoryMiB, checkHostCapacity, type CapacityRequest } from './capacity.js';
export { freeSpace, type FreeSpace } from './disk-space.js';
export { CGROUP_CONTROLLERS, detectCgroups, type CgroupController, type CgroupHierarchy, type CgroupSupport, type CgroupSys } from './cgroup-detect.js';
export { cgroupPrefix, cgroupsEmpty, listVmCgroups, placeInCgroup, probeCgroups, removeVmCgroup, renameVmCgroupOf, vmCgroupLimits, type CgroupLimits, type CgroupPlacement, type CgroupShape, type VmCgroupRequest } from './cgroup.js';
export { confinementLayers, type ConfinementLayer, type ConfinementOptions } from './confinement.js';
export { runDoctor, type DoctorCheck, type DoctorOptions, type DoctorReport } from './doctor.js';
export { isSameProcess, processesWithArg, readProcStat, readStartTime, waitForExit, type ProcStat } from './proc-stat.js';
export { QEMU_IMG_BINARY, QEMU_PACKAGES, QEMU_SYSTEM_BINARY, qemuProgramVersion, runQemuTool, type QemuVersion } from './qemu-binary.js';
export { localQemuBuild, parseQ35Alias, readQemuBuild, type QemuBuild, type QemuBuildOptions } from './qemu-build.js';
export { actorFor, currentOwner, machineBoot, ownerAlive } from './self.js';
export { datastorePath, DEFAULT_DATASTORE, DatastoreViewSchema, HostViewSchema, listHosts, registerLocalHost, requireDatastore, type HostView } from './datastores.js';
export { LOST_SWEEP_MS, startLostHostSweep, sweepLost } from './lost-sweep.js';
export { postcopyReady } from './postcopy.js';
export { DEFAULT_CPU_ALLOCATION_RATIO, MachineSchema, readMachine, type Machine } from './machine.js';
