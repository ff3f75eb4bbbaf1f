import type { Generated, Insertable, Selectable, Updateable } from 'kysely';

/** Table types of the state store. Timestamps are ISO-8601 strings; JSON columns are TEXT. */
export interface Database {
  hosts: HostsTable;
  images: ImagesTable;
  vms: VmsTable;
  processes: ProcessesTable;
  networks: NetworksTable;
  ip_leases: IpLeasesTable;
  templates: TemplatesTable;
}

export interface HostsTable {
  id: string;
  hostname: string;
  created_at: string;
}

export interface ImagesTable {
  name: string;
  /** 'built' by `vmfork image build`, 'imported' by `vmfork image import`. */
  source: 'built' | 'imported';
  disk_path: string;
  kernel_path: string | null;
  initrd_path: string | null;
  manifest_path: string | null;
  recipe_hash: string | null;
  virtual_size: number;
  file_size: number;
  created_at: string;
}

export interface VmsTable {
  name: string;
  host_id: string;
  image_name: string | null;
  /** See src/vm/vm-state.ts for the state machine. */
  state: string;
  /** 'vm' (cold-booted), later 'template' and 'child'. */
  role: string;
  dir: string;
  spec_json: string;
  last_error: string | null;
  created_at: string;
  updated_at: string;
  /** The template a child was forked from (role 'child'); null otherwise. */
  template_name?: string | null;
}

/** A frozen template ("forked state"): see src/fork/template-state.ts and src/fork/template-record.ts. */
export interface TemplatesTable {
  name: string;
  image_name: string;
  state: string;
  dir: string;
  /** The parent VM's spec; children must match its device layout. */
  spec_json: string;
  /** What every child depends on (QEMU build, machine, files + sha256), written when the cut succeeds. */
  record_json: string | null;
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
export interface NetworksTable {
  name: string;
  /** Canonical CIDR, e.g. `10.231.0.0/24`. */
  cidr: string;
  /** Namespace name on the host, recorded because its prefix is configurable. */
  netns: string;
  bridge: string;
  gateway: string;
  /** Random id written into the bridge's alias: proves a namespace on the host belongs to this data dir. */
  owner_id: string;
  /** 'creating' until the host side is built, 'ready', 'deleting' while `network rm` runs. */
  state: 'creating' | 'ready' | 'deleting';
  created_at: string;
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

export type HostRow = Selectable<HostsTable>;
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
