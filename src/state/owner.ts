/**
 * The process that moved a record into a transitional state, identified like a QEMU process: pid + start time
 * (a pid alone is reused), plus the operation it runs, which says how to finish or roll back its work when it
 * died halfway.
 */
export interface Owner {
  pid: number;
  /** Clock ticks after boot (/proc/PID/stat field 22). */
  startTime: number;
  /**
   * The machine and its boot the process ran in: `<machine-id>/<boot_id>`. A pid means something only there; on a
   * store shared by several machines (docs/hosts.md) another machine's owner cannot be judged from here.
   */
  boot: string;
}

/** Operations that leave a record in a transitional state while they run. */
export type OwnerOp =
  | 'boot'
  | 'start'
  | 'stop'
  | 'destroy'
  | 'fork'
  /** launching a template's warm processes (`template warm`, or the refill after a fork took some) */
  | 'warm'
  | 'template-create'
  | 'template-rm'
  | 'network-create'
  | 'network-rm'
  | 'image-import'
  | 'image-rm'
  /** a server running a task (src/provision/): the task's kind says what its runner does */
  | 'task'
  /** a pool operation (converge, resize, rm): its task recovers it */
  | 'pool'
  /** making a replica (phase 1 + copy + template) */
  | 'replica-create'
  | 'replica-rm'
  /** a sweep finding a host lost (its VMs become unknown) */
  | 'host-lost'
  /** a host's agent, back, saying what became of its unknown VMs */
  | 'host-back';

/** The process acting, and what it is doing: recorded as the owner of every transitional state it enters. */
export interface Actor {
  owner: Owner;
  op: OwnerOp;
}
