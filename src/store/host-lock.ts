import { VmforkError } from '../errors.js';
import type { Db } from './db.js';
import { storePools } from './postgres.js';

export interface HostLock {
  /** False once the lock's connection was lost (a database restart): the lock is gone with it and must be taken again. */
  readonly held: boolean;
  /** Gives the lock back (idempotent); a dead process gives it back with its connection. */
  release(): Promise<void>;
}

/**
 * One agent per host name, for its whole life: a PostgreSQL session advisory lock, keyed by the name, held on a
 * connection of its own. The server knows when a holder dies (its connection ends, even on `kill -9`) and frees the
 * lock at once: no stale lock to clean up, no clock to wait on. Undefined when another session holds it.
 * The connection can also end under a live holder (the database restarts): `held` turns false, and the holder takes
 * the lock again (src/host-agent/); the error is the lock's, never the process's.
 * PostgreSQL only: host agents share one database (docs/hosts.md).
 */
export async function tryHostLock(db: Db, hostId: string): Promise<HostLock | undefined> {
  return trySessionLock(db, `vmfork-host:${hostId}`, 'host agents share a PostgreSQL store: give --db postgres://… (docs/hosts.md)');
}

/** The store's pg pool, or `refusal` when the store is not PostgreSQL. */
function pgPool(db: Db, refusal: string): NonNullable<ReturnType<typeof storePools.get>> {
  const pool = storePools.get(db);
  if (!pool) throw new VmforkError('VMFORK_INVALID_ARGUMENT', refusal);
  return pool;
}

/**
 * True when no session holds the advisory lock `key` (its holder died, or never was): checked by taking it for a
 * moment on a connection of its own, and giving it back at once.
 */
export async function sessionLockFree(db: Db, key: string): Promise<boolean> {
  const client = await pgPool(db, 'session locks need a PostgreSQL store').connect();
  try {
    const r = await client.query<{ got: boolean }>('select pg_try_advisory_lock(hashtextextended($1, 0)) as got', [key]);
    if (r.rows[0]?.got !== true) return false;
    await client.query('select pg_advisory_unlock(hashtextextended($1, 0))', [key]);
    return true;
  } finally {
    client.release();
  }
}

/** A session advisory lock `key` held on a connection of its own (see tryHostLock); undefined when another holds it. */
export async function trySessionLock(db: Db, key: string, refusal = 'session locks need a PostgreSQL store'): Promise<HostLock | undefined> {
  const client = await pgPool(db, refusal).connect();
  let held = false;
  let done = false;
  const lost = (): void => {
    held = false;
    if (done) return;
    done = true;
    client.release(true);
  };
  client.on('error', lost);
  client.on('end', lost);
  try {
    const r = await client.query<{ held: boolean }>('select pg_try_advisory_lock(hashtextextended($1, 0)) as held', [key]);
    held = r.rows[0]?.held === true;
  } catch (err) {
    lost();
    throw err;
  }
  if (!held) {
    done = true;
    client.removeListener('error', lost);
    client.removeListener('end', lost);
    client.release();
    return undefined;
  }
  return {
    get held() {
      return held;
    },
    release: async () => {
      if (done) return;
      done = true;
      held = false;
      await client.query('select pg_advisory_unlock(hashtextextended($1, 0))', [key]).catch(() => undefined);
      client.removeListener('error', lost);
      client.removeListener('end', lost);
      client.release();
    },
  };
}
