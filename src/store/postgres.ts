import pg from 'pg';
import { VmforkError } from '../errors.js';
import { isPostgresUrl, redactUrl } from '../util/index.js';

const BIGINT_OID = 20;
const NUMERIC_OID = 1700;

/**
 * node-pg hands `bigint` and `numeric` back as strings (they can pass 2^53). The store's integers are sizes, pids,
 * counts and sums of them, all far below 2^53, and every repo reads them as numbers, as it does from SQLite. Given
 * per pool, so nothing else in the process is affected.
 */
const types = {
  getTypeParser: (oid: number, format?: 'text' | 'binary'): ((value: string) => unknown) =>
    oid === BIGINT_OID || oid === NUMERIC_OID ? (value: string) => Number(value) : (pg.types.getTypeParser(oid, format ?? 'text') as (value: string) => unknown),
};

/** The pool each PostgreSQL store (its Kysely) was opened on: a listener needs a connection outside Kysely's. */
export const storePools = new WeakMap<object, pg.Pool>();

export { isPostgresUrl };

export interface PostgresPoolOptions {
  /** Connections this process holds at most. @default 10 */
  max?: number;
  /** How long a connection attempt may take. @default 5000 */
  connectMs?: number;
}

/**
 * A pool on the database at `url`, checked by one connection before it is handed out: a database that cannot be
 * reached is refused at start (VMFORK_STORE_UNREACHABLE, in the server's own words), not at the first command.
 * `allowExitOnIdle`: a CLI command exits when it is done, rather than when idle connections time out.
 */
export async function openPostgresPool(url: string, options: PostgresPoolOptions = {}): Promise<pg.Pool> {
  const pool = new pg.Pool({ connectionString: url, max: options.max ?? 10, allowExitOnIdle: true, connectionTimeoutMillis: options.connectMs ?? 5000, types });
  // an idle connection the server dropped (a restart, a failover) must not take the process down: the pool makes
  // a new one for the next query
  pool.on('error', () => undefined);
  try {
    const client = await pool.connect();
    client.release();
  } catch (err) {
    await pool.end().catch(() => undefined);
    const why = (err as Error).message || String(err);
    throw new VmforkError(
      'VMFORK_STORE_UNREACHABLE',
      `cannot reach the database at ${redactUrl(url)}: ${why}. Start PostgreSQL, or fix the URL given with --db or VMFORK_DB (host, port, user, password, database)`,
      { cause: err, details: { db: redactUrl(url) } },
    );
  }
  return pool;
}
