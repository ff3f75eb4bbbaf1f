import { sql } from 'kysely';
import { VmforkError } from '../errors.js';
import { LOCAL_HOST_ID, withWriteLock, type Db } from './db.js';
import { dialectOf } from './dialect.js';
import type { DatastoreRow, HostRow } from './schema.js';

/**
 * The database's clock as an ISO instant (the format every other timestamp has). Heartbeats are stamped and judged
 * by it alone: hosts' own clocks may disagree by seconds, the database's is one.
 */
export async function storeNow(db: Db): Promise<string> {
  const q =
    dialectOf(db) === 'postgres'
      ? sql<{ now: string }>`select to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as now`
      : sql<{ now: string }>`select strftime('%Y-%m-%dT%H:%M:%fZ', 'now') as now`;
  const row = (await q.execute(db)).rows[0];
  if (!row) throw new VmforkError('VMFORK_STORE_FAILED', 'the store did not tell its time');
  return row.now;
}

export interface AgentHostFacts {
  id: string;
  hostname: string;
  protocol: number;
  pid: number;
  listen: string;
  cpus: number;
  cpuAllocationRatio: number;
  memoryBytes: number;
  accel: string;
  accelWhy: string;
  qemuVersion: string;
  lostAfterMs: number;
  datastores: { name: string; path: string; freeBytes: number }[];
}

/**
 * An agent's host comes up: its row made or refreshed with what the agent reported, `up`, heartbeat now, and a new
 * generation (the old one's work is fenced off from here on); its datastores recorded (a path given anew replaces
 * the one recorded). One write-locked transaction: two agents of one name cannot interleave here (and the second is
 * refused before, by the host lock). Returns the new generation.
 */
export async function registerAgentHost(db: Db, facts: AgentHostFacts): Promise<number> {
  return withWriteLock(db, async (conn) => {
    const now = await storeNow(conn);
    const values = {
      hostname: facts.hostname,
      state: 'up' as const,
      agent_protocol: facts.protocol,
      agent_pid: facts.pid,
      agent_listen: facts.listen,
      cpus: facts.cpus,
      cpu_allocation_ratio: facts.cpuAllocationRatio,
      memory_bytes: facts.memoryBytes,
      accel: facts.accel,
      accel_why: facts.accelWhy,
      qemu_version: facts.qemuVersion,
      lost_after_ms: facts.lostAfterMs,
      heartbeat_at: now,
    };
    const row = await conn
      .insertInto('hosts')
      .values({ id: facts.id, created_at: now, generation: 1, ...values })
      .onConflict((oc) => oc.column('id').doUpdateSet((eb) => ({ ...values, generation: eb('hosts.generation', '+', 1) })))
      .returning('generation')
      .executeTakeFirstOrThrow();
    for (const d of facts.datastores) {
      await conn
        .insertInto('datastores')
        .values({ host_id: facts.id, name: d.name, path: d.path, free_bytes: d.freeBytes, created_at: now })
        .onConflict((oc) => oc.columns(['host_id', 'name']).doUpdateSet({ path: d.path, free_bytes: d.freeBytes }))
        .execute();
    }
    return row.generation;
  });
}

/**
 * A heartbeat of the agent of `generation`: stamps the host and refreshes its datastores' free space. False when
 * the host has moved on to a newer generation (another agent of this name started since): this agent is fenced and
 * must stop. A lost host's agent that comes back before anyone restarted it is `up` again.
 */
export async function hostHeartbeat(db: Db, id: string, generation: number, free: Record<string, number>): Promise<boolean> {
  const now = await storeNow(db);
  const r = await db
    .updateTable('hosts')
    .set({ heartbeat_at: now, state: 'up' })
    .where('id', '=', id)
    .where('generation', '=', generation)
    .where('state', 'in', ['up', 'lost'])
    .executeTakeFirst();
  if (Number(r.numUpdatedRows) !== 1) return false;
  for (const [name, bytes] of Object.entries(free)) {
    await db.updateTable('datastores').set({ free_bytes: bytes }).where('host_id', '=', id).where('name', '=', name).execute();
  }
  return true;
}

/** The agent of `generation` stops cleanly: its host is `down` (unless a newer agent has it already). */
export async function markHostDown(db: Db, id: string, generation: number): Promise<boolean> {
  const r = await db.updateTable('hosts').set({ state: 'down' }).where('id', '=', id).where('generation', '=', generation).where('state', 'in', ['up', 'lost']).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/**
 * Hosts whose last heartbeat is older than their agent's `lost_after_ms`, by the database's clock, become `lost`.
 * Each is a compare-and-set on `up` and on the heartbeat it was judged by: of several sweepers (every agent, every
 * server) each host is found lost once, and a heartbeat that lands meanwhile wins. The local host has no agent and
 * is never lost. Returns the hosts found lost now.
 */
export async function sweepLostHosts(db: Db): Promise<string[]> {
  const now = Date.parse(await storeNow(db));
  const up = await db.selectFrom('hosts').select(['id', 'heartbeat_at', 'lost_after_ms']).where('state', '=', 'up').where('id', '<>', LOCAL_HOST_ID).execute();
  const lost: string[] = [];
  for (const h of up) {
    if (h.heartbeat_at === null || h.lost_after_ms === null || Date.parse(h.heartbeat_at) >= now - h.lost_after_ms) continue;
    const r = await db.updateTable('hosts').set({ state: 'lost' }).where('id', '=', h.id).where('state', '=', 'up').where('heartbeat_at', '=', h.heartbeat_at).executeTakeFirst();
    if (Number(r.numUpdatedRows) === 1) lost.push(h.id);
  }
  return lost.sort();
}

export async function getHost(db: Db, id: string): Promise<HostRow | undefined> {
  return db.selectFrom('hosts').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Datastores of other hosts recorded at `path` (a path two hosts would both write). */
export async function datastoresAtPath(db: Db, path: string, exceptHost: string): Promise<DatastoreRow[]> {
  return db.selectFrom('datastores').selectAll().where('path', '=', path).where('host_id', '<>', exceptHost).execute();
}
