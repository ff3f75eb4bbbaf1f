import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import type { HomeLayout } from '../config/index.js';
import { VmforkError } from '../errors.js';
import { freeSpace } from './disk-space.js';
import { DEFAULT_CPU_ALLOCATION_RATIO, MachineSchema, readMachine, type Machine } from './machine.js';
import { HOST_STATES } from '../state/index.js';
import { ensureDatastore, getDatastore, listDatastores, listHostRows, LOCAL_HOST_ID, upsertHost, type DatastoreRow, type Db, type HostRow } from '../store/index.js';

export const DEFAULT_DATASTORE = 'default';

export const DatastoreViewSchema = z.object({ name: z.string(), path: z.string(), freeBytes: z.number().int().min(0) });
export const HostViewSchema = z.object({
  id: z.string(),
  hostname: z.string(),
  /** This server's own host; the others are host agents' (docs/hosts.md). */
  local: z.boolean(),
  createdAt: z.string(),
  datastores: z.array(DatastoreViewSchema),
  /** `up`, `lost` (its heartbeats stopped) or `down` (its agent stopped); the local host is always `up`. */
  state: z.enum(HOST_STATES),
  /** What its agent reported at its start; null for the local host. */
  agent: z
    .object({
      protocol: z.number().int(),
      pid: z.number().int(),
      listen: z.string(),
      generation: z.number().int(),
      heartbeatAt: z.string().nullable(),
      ...MachineSchema.shape,
    })
    .nullable(),
  /**
   * What the host is, for a person reading it (the console's hosts page): its agent's report, or for the local host
   * this server's own reading of its machine (read once per process). Null for an agent host that never reported.
   */
  machine: MachineSchema.nullable(),
});
export type HostView = z.infer<typeof HostViewSchema>;
let localMachine: Promise<Machine> | undefined;

/** This host as the server sees it: read once per process, as an agent reads its own at its start. */
function readLocalMachine(): Promise<Machine> {
  localMachine ??= readMachine();
  return localMachine;
}

interface HostDeps {
  db: Db;
  home: HomeLayout;
}

/** `<home>/datastores/<name>`: where this host's datastores live unless registered elsewhere. */
export function datastorePath(home: HomeLayout, name: string = DEFAULT_DATASTORE): string {
  return join(home.root, 'datastores', name);
}

/**
 * The local host registers itself (id, hostname) with its datastores at server start: `default` is
 * `<home>/datastores/default`, created if missing. Idempotent.
 */
export async function registerLocalHost(deps: HostDeps): Promise<void> {
  await upsertHost(deps.db, LOCAL_HOST_ID, hostname());
  const path = datastorePath(deps.home);
  await mkdir(path, { recursive: true });
  await ensureDatastore(deps.db, { host_id: LOCAL_HOST_ID, name: DEFAULT_DATASTORE, path, created_at: new Date().toISOString() });
}

/** This host's datastores are measured now; another host's path is on that host, so its agent's last figure is used. */
async function datastoreView(row: DatastoreRow, local: boolean): Promise<z.infer<typeof DatastoreViewSchema>> {
  return { name: row.name, path: row.path, freeBytes: local ? (await freeSpace(row.path)).freeBytes : (row.free_bytes ?? 0) };
}

function agentView(h: HostRow): HostView['agent'] {
  if (h.agent_protocol === null) return null;
  return {
    protocol: h.agent_protocol,
    pid: h.agent_pid ?? 0,
    listen: h.agent_listen ?? '',
    generation: h.generation,
    heartbeatAt: h.heartbeat_at,
    cpus: h.cpus ?? 0,
    cpuAllocationRatio: h.cpu_allocation_ratio ?? DEFAULT_CPU_ALLOCATION_RATIO,
    memoryBytes: h.memory_bytes ?? 0,
    accel: h.accel ?? '',
    accelWhy: h.accel_why ?? '',
    qemuVersion: h.qemu_version ?? '',
  };
}

async function machineOf(h: HostRow): Promise<HostView['machine']> {
  const a = agentView(h);
  if (a) return MachineSchema.parse(a); // the agent's report less its process fields (z.object strips them)
  return h.id === LOCAL_HOST_ID ? readLocalMachine() : null;
}

/** Every host with its datastores and their free space. */
export async function listHosts(deps: HostDeps): Promise<HostView[]> {
  const [hosts, stores] = await Promise.all([listHostRows(deps.db), listDatastores(deps.db)]);
  return Promise.all(
    hosts.map(async (h) => ({
      id: h.id,
      hostname: h.hostname,
      local: h.id === LOCAL_HOST_ID,
      createdAt: h.created_at,
      datastores: await Promise.all(stores.filter((d) => d.host_id === h.id).map((d) => datastoreView(d, h.id === LOCAL_HOST_ID))),
      state: h.state,
      agent: agentView(h),
      machine: await machineOf(h),
    })),
  );
}

/** A host's datastore by name; an unknown one is VMFORK_DATASTORE_NOT_FOUND. */
export async function requireDatastore(db: Db, name: string, hostId: string = LOCAL_HOST_ID): Promise<DatastoreRow> {
  const row = await getDatastore(db, hostId, name);
  if (!row) throw new VmforkError('VMFORK_DATASTORE_NOT_FOUND', `host ${hostId} has no datastore named "${name}" (see: GET /v1/hosts)`, { details: { datastore: name, host: hostId } });
  return row;
}
