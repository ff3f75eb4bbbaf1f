import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { sql } from 'kysely';
import pg from 'pg';
import { homeLayout, type HomeLayout } from '../../src/config/index.js';
import { dialectOf, openStore, type Db, type StoreDialect } from '../../src/store/index.js';
import { isPostgresUrl } from '../../src/util/index.js';

/**
 * The store a unit test runs on. Unset, SQLite; under `scripts/test-pg.sh`, VMFORK_TEST_PG_URL names a real
 * PostgreSQL (test/fixtures/postgres-server.ts) and every store a test opens is a fresh database on it: the same
 * test files prove both dialects.
 */
export function testDialect(): StoreDialect {
  return process.env.VMFORK_TEST_PG_URL ? 'postgres' : 'sqlite';
}

/** A fresh, empty database on the test server: its URL. */
export async function freshPostgresDatabase(serverUrl: string): Promise<string> {
  const name = `t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

/**
 * Where a test's store lives: `:memory:` (or `<dir>/vmfork.db` when several processes must share it, `dir` given)
 * on SQLite; a fresh database's URL on PostgreSQL.
 */
export async function testStoreTarget(dir?: string): Promise<string> {
  const server = process.env.VMFORK_TEST_PG_URL;
  if (server) return freshPostgresDatabase(server);
  return dir ? join(dir, 'vmfork.db') : ':memory:';
}

/** A fresh store of the run's dialect. */
export async function openTestStore(): Promise<Db> {
  return openStore(await testStoreTarget());
}

/** Makes the store refuse every insert into `table` with "store refused", as a full or locked database would. */
export async function refuseInserts(db: Db, table: string): Promise<void> {
  if (dialectOf(db) === 'postgres') {
    await sql`create function refuse_insert() returns trigger language plpgsql as $$ begin raise exception 'store refused'; end $$`.execute(db);
    await sql`create trigger refuse before insert on ${sql.table(table)} for each row execute function refuse_insert()`.execute(db);
  } else {
    await sql`create trigger refuse before insert on ${sql.table(table)} begin select raise(abort, 'store refused'); end`.execute(db);
  }
}

/** Rows of one query on a store, read without opening it as vmfork does (no migration, no check): a raw look. */
export async function rawRows(target: string, query: string): Promise<Record<string, unknown>[]> {
  if (isPostgresUrl(target)) {
    const client = new pg.Client({ connectionString: target });
    await client.connect();
    try {
      return (await client.query(query)).rows as Record<string, unknown>[];
    } finally {
      await client.end();
    }
  }
  const file = new SQLite(target, { readonly: true });
  try {
    return file.prepare(query).all() as Record<string, unknown>[];
  } finally {
    file.close();
  }
}

/**
 * A data dir's layout for a unit test whose store is the run's dialect: its SQLite file on SQLite, a fresh
 * PostgreSQL database (home.db is then its URL, as with `--db`) under scripts/test-pg.sh.
 */
export async function testHomeLayout(dir: string): Promise<HomeLayout> {
  const server = process.env.VMFORK_TEST_PG_URL;
  return homeLayout(dir, {}, server ? await freshPostgresDatabase(server) : undefined);
}

/**
 * Everything the store holds, as text, to search for what must never be in it (a secret): the SQLite files of the
 * data dir (the database, its WAL), or every row of every table of the PostgreSQL database.
 */
export async function storeText(home: HomeLayout): Promise<string> {
  if (isPostgresUrl(home.db)) {
    const tables = await rawRows(home.db, "select tablename from pg_tables where schemaname = 'public'");
    const parts = await Promise.all(tables.map(async (t) => JSON.stringify(await rawRows(home.db, `select * from "${String(t.tablename)}"`))));
    return parts.join('\n');
  }
  const files = (await readdir(home.root)).filter((f) => f.startsWith('vmfork.db') || f.endsWith('.db') || f.endsWith('-wal'));
  return (await Promise.all(files.map((f) => readFile(join(home.root, f), 'latin1')))).join('');
}
