import { sql } from 'kysely';
import { VmforkError } from '../errors.js';
import type { Db } from './db.js';
import { dialectOf } from './dialect.js';

export interface HostLock {
  /** Gives the lock back (idempotent); a dead process gives it back with its connection. */
  release(): Promise<void>;
}

/**
 * One agent per host name, for its whole life: a PostgreSQL session advisory lock, keyed by the name, held on a
 * connection of its own. The server knows when a holder dies (its connection ends, even on `kill -9`) and frees the
 * lock at once: no stale lock to clean up, no clock to wait on. Undefined when another session holds it.
 * PostgreSQL only: host agents share one database (docs/hosts.md).
 */
export async function tryHostLock(db: Db, hostId: string): Promise<HostLock | undefined> {
  if (dialectOf(db) !== 'postgres') {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', 'host agents share a PostgreSQL store: give --db postgres://… (docs/hosts.md)');
  }
  let acquired!: (held: boolean) => void;
  let failed!: (err: unknown) => void;
  const outcome = new Promise<boolean>((resolve, reject) => {
    acquired = resolve;
    failed = reject;
  });
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const key = sql`hashtextextended(${`vmfork-host:${hostId}`}, 0)`;
  const session = db.connection().execute(async (conn) => {
    const r = await sql<{ held: boolean }>`select pg_try_advisory_lock(${key}) as held`.execute(conn);
    const held = r.rows[0]?.held === true;
    acquired(held);
    if (!held) return;
    await released;
    await sql`select pg_advisory_unlock(${key})`.execute(conn).catch(() => undefined);
  });
  // a failure before the answer (the connection) rejects the outcome; after it, it is the release's to swallow
  session.catch(failed);
  if (!(await outcome)) {
    await session;
    return undefined;
  }
  return {
    release: async () => {
      release();
      await session.catch(() => undefined);
    },
  };
}
