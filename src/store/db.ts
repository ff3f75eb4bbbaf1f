import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { hostname } from 'node:os';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, sql } from 'kysely';
import { VmforkError } from '../errors.js';
import { migrationProvider } from './migrations/index.js';
import type { Database } from './schema.js';

export type Db = Kysely<Database>;

export interface OpenStoreOptions {
  /** Busy timeout for concurrent CLI invocations and the API server sharing one file. @default 5000 */
  busyTimeoutMs?: number;
}

/** The id of this machine in the hosts table; more hosts come with host agents. */
export const LOCAL_HOST_ID = 'local';

/**
 * Opens (creating if needed) the SQLite store at `path` in WAL mode and applies pending migrations.
 * `:memory:` works for tests.
 */
export async function openStore(path: string, options: OpenStoreOptions = {}): Promise<Db> {
  let sqlite: SQLite.Database;
  try {
    if (path !== ':memory:') {
      mkdirSync(dirname(path), { recursive: true });
      // private whatever the umask (a test, a library caller): sqlite gives its -wal and -shm files this mode too, and
      // a confined QEMU's group may search the data dir (docs/security.md)
      closeSync(openSync(path, 'a', 0o600));
      chmodSync(path, 0o600);
    }
    sqlite = new SQLite(path);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('synchronous = NORMAL');
  } catch (err) {
    throw new VmforkError('VMFORK_STORE_FAILED', `cannot open ${path}: ${(err as Error).message}`, { cause: err });
  }
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  await migrate(db);
  await db
    .insertInto('hosts')
    .values({ id: LOCAL_HOST_ID, hostname: hostname(), created_at: new Date().toISOString() })
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
  return db;
}

export async function migrate(db: Kysely<Database>): Promise<string[]> {
  const migrator = new Migrator({ db, provider: migrationProvider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    throw new VmforkError('VMFORK_STORE_FAILED', `migration failed: ${(error as Error).message ?? String(error)}`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** True for SQLite's UNIQUE (and PRIMARY KEY) constraint failure: the row or the value is already taken. */
export function isUniqueViolation(err: unknown): boolean {
  return err instanceof Error && /UNIQUE constraint failed/.test(err.message);
}

/**
 * Runs `fn` in a `BEGIN IMMEDIATE` transaction on one reserved connection. IMMEDIATE takes SQLite's write lock up
 * front, so a read-then-insert (pick the lowest free address or the next free name, insert it) cannot interleave
 * with another process doing the same; waiting for the lock is bounded by the store's busy_timeout. A plain
 * (deferred) BEGIN would instead fail with SQLITE_BUSY when two readers both try to upgrade to writers.
 */
export async function withWriteLock<T>(db: Db, fn: (conn: Db) => Promise<T>): Promise<T> {
  return db.connection().execute(async (conn) => {
    await sql`begin immediate`.execute(conn);
    try {
      const result = await fn(conn);
      await sql`commit`.execute(conn);
      return result;
    } catch (err) {
      await sql`rollback`.execute(conn);
      throw err;
    }
  });
}
