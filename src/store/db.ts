import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { hostname } from 'node:os';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from 'kysely';
import { VmforkError } from '../errors.js';
import { dialectOf, PgSchemaPlugin } from './dialect.js';
import { MIGRATIONS, migrationProvider } from './migrations/index.js';
import { isPostgresUrl, openPostgresPool, storePools } from './postgres.js';
import type { Database } from './schema.js';

export type Db = Kysely<Database>;

export interface OpenStoreOptions {
  /** Busy timeout for concurrent CLI invocations and the API server sharing one file. @default 5000 */
  busyTimeoutMs?: number;
}

/** The id of this machine in the hosts table; more hosts come with host agents. */
export const LOCAL_HOST_ID = 'local';

/**
 * Opens the store and applies pending migrations: a `postgres://` URL is a PostgreSQL database (docs/postgres.md),
 * anything else the SQLite file at that path (created if needed, WAL mode); `:memory:` works for tests.
 */
export async function openStore(target: string, options: OpenStoreOptions = {}): Promise<Db> {
  const db = isPostgresUrl(target) ? await openPostgres(target) : openSqlite(target, options);
  try {
    await migrate(db);
    await db
      .insertInto('hosts')
      .values({ id: LOCAL_HOST_ID, hostname: hostname(), created_at: new Date().toISOString() })
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
  } catch (err) {
    await db.destroy().catch(() => undefined);
    throw err;
  }
  return db;
}

async function openPostgres(url: string): Promise<Db> {
  const pool = await openPostgresPool(url);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  storePools.set(db, pool);
  return db;
}

function openSqlite(path: string, options: OpenStoreOptions): Db {
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
  return new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
}

/**
 * Brings the store to this vmfork's schema. A store that holds migrations this vmfork does not know was made by a
 * newer one: refused with VMFORK_STORE_SCHEMA before anything is changed (an older vmfork writing rows a newer
 * schema has other rules for would corrupt it). Several processes may open one new store at once: the check and the
 * migrations run under one lock (migrationLock), so one migrates and the others find it done.
 */
export async function migrate(db: Kysely<Database>): Promise<string[]> {
  const onPg = dialectOf(db) === 'postgres';
  return migrationLock(db, async (conn) => {
    await refuseNewerSchema(conn);
    // the migrations are written in SQLite's words; on PostgreSQL a plugin gives their types PostgreSQL's (dialect.ts)
    const migrator = new Migrator({ db: onPg ? conn.withPlugin(new PgSchemaPlugin()) : conn, provider: migrationProvider });
    const { error, results } = await migrator.migrateToLatest();
    if (error) {
      throw new VmforkError('VMFORK_STORE_FAILED', `migration failed: ${(error as Error).message ?? String(error)}`, { cause: error });
    }
    return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
  });
}

/** The advisory lock key of migrate on PostgreSQL: another constant than withWriteLock's ("vmfork" + 1). */
const MIGRATE_LOCK_KEY = 0x766d666f726c;

/**
 * Kysely's own migration lock does not cover this: on SQLite it is none at all (it assumes one connection per
 * database), and on both the migration table is made before it is taken. So, on one reserved connection:
 * SQLite: `BEGIN IMMEDIATE`, which also makes the migrations one transaction, all applied or none (SQLite runs DDL
 * in transactions; Kysely does not ask it to). PostgreSQL: a session advisory lock around Kysely's own
 * transaction, released in `finally` or with the connection if it dies.
 */
async function migrationLock<T>(db: Kysely<Database>, fn: (conn: Kysely<Database>) => Promise<T>): Promise<T> {
  const onPg = dialectOf(db) === 'postgres';
  return db.connection().execute(async (conn) => {
    if (onPg) {
      await sql`select pg_advisory_lock(${MIGRATE_LOCK_KEY})`.execute(conn);
      try {
        return await fn(conn);
      } finally {
        await sql`select pg_advisory_unlock(${MIGRATE_LOCK_KEY})`.execute(conn);
      }
    }
    return inTransaction(conn, async () => {
      await sql`begin immediate`.execute(conn);
    }, fn);
  });
}

/** `begin` (as the caller opens it), `fn`, then commit; or rollback, and the error goes on. */
async function inTransaction<T>(conn: Db, begin: () => Promise<void>, fn: (conn: Db) => Promise<T>): Promise<T> {
  await begin();
  try {
    const result = await fn(conn);
    await sql`commit`.execute(conn);
    return result;
  } catch (err) {
    await sql`rollback`.execute(conn);
    throw err;
  }
}

/** The migrations a store has applied that this vmfork does not know (none: it may open it). */
async function refuseNewerSchema(db: Kysely<Database>): Promise<void> {
  const tables = await db.introspection.getTables({ withInternalKyselyTables: true });
  if (!tables.some((t) => t.name === 'kysely_migration')) return;
  const rows = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(db);
  const known = Object.keys(MIGRATIONS);
  const unknown = rows.rows.map((r) => r.name).filter((n) => !known.includes(n));
  if (unknown.length) {
    throw new VmforkError(
      'VMFORK_STORE_SCHEMA',
      `the store is at schema ${unknown.at(-1)}, and this vmfork knows up to ${known.at(-1)}: a newer vmfork migrated it. Run that version (or a later one) on it; nothing was changed`,
      { details: { storeSchema: unknown.at(-1), knownSchema: known.at(-1), unknown } },
    );
  }
}

/**
 * True when a UNIQUE (or PRIMARY KEY) constraint refused the write: the row or the value is already taken. SQLite
 * says so in its message; PostgreSQL with SQLSTATE 23505.
 */
export function isUniqueViolation(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return (err as Error & { code?: unknown }).code === '23505' || /UNIQUE constraint failed/.test(err.message);
}

/** The advisory lock key of withWriteLock on PostgreSQL ("vmfork" in ASCII): any 64-bit constant all vmforks share. */
const WRITE_LOCK_KEY = 0x766d666f726b;

/**
 * Runs `fn` in a `BEGIN IMMEDIATE` transaction on one reserved connection. IMMEDIATE takes SQLite's write lock up
 * front, so a read-then-insert (pick the lowest free address or the next free name, insert it) cannot interleave
 * with another process doing the same; waiting for the lock is bounded by the store's busy_timeout. A plain
 * (deferred) BEGIN would instead fail with SQLITE_BUSY when two readers both try to upgrade to writers.
 */
export async function withWriteLock<T>(db: Db, fn: (conn: Db) => Promise<T>): Promise<T> {
  const onPg = dialectOf(db) === 'postgres';
  return db.connection().execute((conn) =>
    inTransaction(conn, async () => {
      if (onPg) {
        // PostgreSQL has no database-wide write lock; one transaction-scoped advisory lock, taken by every caller,
        // gives the same guarantee across processes and hosts: these read-then-write sections run one at a time,
        // and the lock goes with the transaction, whether it commits, rolls back or its connection dies
        await sql`begin`.execute(conn);
        await sql`select pg_advisory_xact_lock(${WRITE_LOCK_KEY})`.execute(conn);
      } else {
        await sql`begin immediate`.execute(conn);
      }
    }, fn),
  );
}
