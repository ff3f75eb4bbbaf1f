import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';
import type { ClaimState, HostState, ImageState, NetworkState, OwnerOp, PoolState, ReplicaState, TaskState, TemplateState, VmRole, VmState } from '../state/index.js';

/**
 * Table types of the state store. Timestamps are ISO-8601 strings; JSON columns are TEXT. Every resource with a
 * state has the same owner columns: set while the row is in a transitional state (see src/state/), null otherwise.
 */
export interface Database {
  hosts: HostsTable;
  images: ImagesTable;
  vms: VmsTable;
  processes: ProcessesTable;
  networks: NetworksTable;
  ip_leases: IpLeasesTable;
  templates: TemplatesTable;
  settings: SettingsTable;
  tasks: TasksTable;
  task_events: TaskEventsTable;
  datastores: DatastoresTable;
  pools: PoolsTable;
  replicas: ReplicasTable;
  pool_reservations: PoolReservationsTable;
  sessions: SessionsTable;
}

/** Who is moving a row through a transitional state: the process (pid + start time) and its operation. */
export interface OwnerColumns {
  owner_pid: number | null;
  owner_start_time: number | null;
  owner_op: OwnerOp | null;
  /** The owner's machine and boot (`<machine-id>/<boot_id>`); null in rows from before it was recorded. */
  owner_boot: string | null;
}

export interface HostsTable {
  id: string;
  hostname: string;
  created_at: string;
  state: ColumnType<HostState, HostState | undefined, HostState>;
  /** What its agent reported at its start (null for the local host, which has no agent). */
  agent_protocol: number | null;
  agent_pid: number | null;
  agent_listen: string | null;
  cpus: number | null;
  /** vCPUs its agent lets run per host CPU (`--cpu-allocation-ratio`); null: the default. */
  cpu_allocation_ratio: number | null;
  memory_bytes: number | null;
  accel: string | null;
  accel_why: string | null;
  qemu_version: string | null;
  /** The database's clock at the agent's last heartbeat. */
  heartbeat_at: string | null;
  /** Its agent's rule: no heartbeat for this long and the host is lost (whoever sweeps applies it). */
  lost_after_ms: number | null;
  /** One more at each agent start: the fence between a lost host's old life and its new one. */
  generation: ColumnType<number, number | undefined, number>;
}

export interface ImagesTable extends OwnerColumns {
  name: string;
  /** 'built' by `vmfork image build`, 'imported' by `vmfork image import`. */
  source: 'built' | 'imported';
  state: ImageState;
  disk_path: string;
  kernel_path: string | null;
  initrd_path: string | null;
  manifest_path: string | null;
  recipe_hash: string | null;
  virtual_size: number;
  file_size: number;
  created_at: string;
  updated_at: string;
}

export interface VmsTable extends OwnerColumns {
  name: string;
  host_id: string;
  image_name: string | null;
  state: VmState;
  role: VmRole;
  dir: string;
  /** The parsed VmSpec (src/spec/), every default applied: the same shape for every role. */
  spec_json: string;
  last_error: string | null;
  created_at: string;
  updated_at: string;
  /** The template a child was forked from (role 'child'); null otherwise. */
  template_name: string | null;
  /** The pool a child belongs to; null for VMs outside pools. */
  pool_name: string | null;
  /** What the guest reported at fork time (machine id, SSH host key fingerprints, address): `vmfork ssh` checks the host key against it. */
  facts_json: string | null;
  /** scrypt hash (with its salt) of the sha256 of the child's machine password; never the password. */
  secret_hash: string | null;
  /** When a user claimed the pool child (powered it on, or took it from the spares); null while it is a spare. */
  claimed_at: string | null;
  /** src/state/claim-state.ts; moved only by compare-and-set (claims-repo.ts). */
  claim_state: Generated<ClaimState>;
  /** Who holds the claim (free text the caller gave; `null` when none was given). */
  claimed_by: string | null;
  /** When the claim's TTL ends (the server releases it then); null for no TTL. */
  claim_expires_at: string | null;
  /** The uid its QEMU runs as (src/config/qemu-user.ts); null until its first confined launch. Unique. */
  qemu_uid: ColumnType<number | null, number | null | undefined, number | null>;
  /** Set on a placed pool's child whose host was lost: the child that replaced it (its host's agent destroys it). */
  replaced_by: ColumnType<string | null, string | null | undefined, string | null>;
  /** When its last fork made it ready (a refresh forks it again); null until its first fork (registered, warm). */
  forked_at: string | null;
  /** Milliseconds of that fork, from its start to ready (identity and the pool's phase 2 done). */
  ready_ms: number | null;
}

/** A frozen template ("forked state"): see src/template/. */
export interface TemplatesTable extends OwnerColumns {
  name: string;
  image_name: string;
  /** The host its files and QEMUs are on: children fork from it there (`local` on one host). */
  host_id: ColumnType<string, string | undefined, string>;
  state: TemplateState;
  dir: string;
  /** The parent VM's parsed spec ('{}' until it is planned); children must match its device layout. */
  spec_json: string;
  /** What every child depends on (QEMU build, machine, files + sha256), written when the cut succeeds. */
  record_json: string | null;
  /** The replica whose disks the template's are overlays on (a pool's template), or null (`vmfork template create`). */
  replica_id: string | null;
  /** The template this one stands on (`template create --from-vm`: its disks overlay that template's), or null. */
  parent_name: string | null;
  last_error: string | null;
  created_at: string;
  updated_at: string;
}

export interface ProcessesTable {
  id: Generated<number>;
  vm_name: string;
  pid: number;
  /** Process start time in clock ticks since boot (/proc/PID/stat field 22): a pid alone can be reused. */
  start_time: number;
  qmp_path: string;
  agent_path: string | null;
  pidfile: string;
  argv_json: string;
  started_at: string;
  exited_at: string | null;
}

/** A vmfork network: one namespace with one bridge (see docs/networks.md). */
export interface NetworksTable extends OwnerColumns {
  name: string;
  /** Canonical CIDR, e.g. `10.231.0.0/24`. */
  cidr: string;
  /** Namespace name on the host, recorded because its prefix differs between data dirs. */
  netns: string;
  bridge: string;
  gateway: string;
  /** Random id written into the bridge's alias: proves a namespace on the host belongs to this data dir. */
  owner_id: string;
  /** The VXLAN network identifier joining its hosts' bridges; null until first used on an agent's host. */
  vni: ColumnType<number | null, number | null | undefined, number | null>;
  state: NetworkState;
  created_at: string;
  updated_at: string;
}

export interface IpLeasesTable {
  id: Generated<number>;
  network_name: string;
  ip: string;
  vm_name: string;
  mac: string;
  tap: string;
  allocated_at: string;
}

/** Facts about this data dir that never change once set (e.g. its namespace prefix). */
export interface SettingsTable {
  key: string;
  value: string;
}

/**
 * One pool operation run in the background (src/provision/, docs/tasks.md). JSON columns are TEXT; none of them
 * ever holds a secret (the task engine redacts secret-looking fields before writing).
 */
export interface TasksTable extends OwnerColumns {
  id: string;
  /** What the task does (`pool-create`, `pool-resize`, …): recovery finds its runner by this. */
  kind: string;
  /** The resource it acts on (a pool or VM name). */
  target: string;
  state: TaskState;
  step: string | null;
  /** 0–100. */
  percent: number;
  /** Per-child progress: `{ [child]: { state, percent, error? } }`. */
  progress_json: string;
  /** The request, as the runner needs it to run again in resume mode. */
  input_json: string;
  result_json: string | null;
  /** `{ code, message }` of the failure that ended it. */
  last_error: string | null;
  host_id: string;
  /**
   * The queue it runs in (a pool's name; null: runs at once). Tasks of one queue run in the order they were made,
   * except that `lock`s of different VMs may run together.
   */
  queue: string | null;
  /** `pool` (alone in its queue: create, resize, converge, rm) or `vm:<name>` (a power operation on one VM). */
  lock: string | null;
  /** The task it waited behind when it was queued (null: none). */
  queued_behind: string | null;
  created_at: string;
  updated_at: string;
}

/** A task's events, numbered from 1 per task: replayed to a follower, then streamed live. */
export interface TaskEventsTable {
  task_id: string;
  seq: number;
  at: string;
  kind: string;
  message: string;
  data_json: string | null;
}

/** A pool: its parsed spec, and the replica + template its children fork from (src/provision/). */
export interface PoolsTable extends OwnerColumns {
  name: string;
  host_id: string;
  state: PoolState;
  spec_json: string;
  replica_id: string | null;
  template_name: string | null;
  /** The last task that worked on it. */
  task_id: string | null;
  last_error: string | null;
  created_at: string;
  updated_at: string;
  /** The last image or spec push (src/pool/push.ts PushRecord), or null when none ran. */
  push_json: string | null;
}

/** The replica map: a customized clone copied whole onto a host's datastore, keyed by what it was made from. */
export interface ReplicasTable extends OwnerColumns {
  id: string;
  image_name: string;
  /** The image's recipe hash or disk sha256: a rebuilt image is another version. */
  image_version: string;
  phase1_digest: string;
  host_id: string;
  datastore: string;
  state: ReplicaState;
  dir: string;
  /** `[{ id, path, sha256, size }]`, system disk first: the sealed, read-only full copies. */
  disks_json: string;
  /** Reboots, mounts and timings of the phase 1 that made it. */
  phase1_json: string | null;
  last_error: string | null;
  created_at: string;
  updated_at: string;
}

/** Where a host keeps replicas and pool disks; `default` is `<home>/datastores/default`. */
export interface DatastoresTable {
  host_id: string;
  name: string;
  path: string;
  created_at: string;
  /** Free bytes at its host's last heartbeat (null: not measured by an agent). */
  free_bytes: ColumnType<number | null, number | null | undefined, number | null>;
}

export type ImageRow = Selectable<ImagesTable>;
export type NewImage = Insertable<ImagesTable>;
export type VmRow = Selectable<VmsTable>;
export type NewVm = Insertable<VmsTable>;
export type VmUpdate = Updateable<VmsTable>;
export type ProcessRow = Selectable<ProcessesTable>;
export type NewProcess = Insertable<ProcessesTable>;
export type NetworkRow = Selectable<NetworksTable>;
export type NewNetwork = Insertable<NetworksTable>;
export type LeaseRow = Selectable<IpLeasesTable>;
export type NewLease = Insertable<IpLeasesTable>;
export type TemplateRow = Selectable<TemplatesTable>;
export type NewTemplate = Insertable<TemplatesTable>;
export type TaskRow = Selectable<TasksTable>;
export type NewTask = Insertable<TasksTable>;
export type TaskUpdate = Updateable<TasksTable>;
export type TaskEventRow = Selectable<TaskEventsTable>;
export type DatastoreRow = Selectable<DatastoresTable>;
export type NewDatastore = Insertable<DatastoresTable>;
export type HostRow = Selectable<HostsTable>;
export type PoolRow = Selectable<PoolsTable>;
export type ReplicaRow = Selectable<ReplicasTable>;

/** A resize's new size, reserved with its capacity check (src/pool/disk-budget.ts); one per pool. */
export interface PoolReservationsTable {
  pool: string;
  max: number;
  /** The resize task, once queued; null in the moment between the check and the queueing. */
  task_id: string | null;
  created_at: string;
}
export type PoolReservationRow = Selectable<PoolReservationsTable>;

/**
 * A web console session (src/api/session.ts). Keyed by the sha256 of the cookie's value: the value itself, the
 * only thing that authenticates, is never stored, so reading this table gives no session away.
 */
export interface SessionsTable {
  id_hash: string;
  created_at: string;
  expires_at: string;
  /** Set at logout: the same cookie is refused from then on, by every server on the store. */
  revoked_at: string | null;
}
export type SessionRow = Selectable<SessionsTable>;
