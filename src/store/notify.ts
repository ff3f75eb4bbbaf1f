import { sql } from 'kysely';
import type pg from 'pg';
import type { Db } from './db.js';
import { dialectOf } from './dialect.js';
import { storePools } from './postgres.js';

/** PostgreSQL channel that carries a task's id each time it gets an event (docs/postgres.md, "Task events"). */
const TASK_CHANNEL = 'vmfork_task_event';


/**
 * Tells every process listening on the store that task `id` has a new event: PostgreSQL's NOTIFY, delivered at the
 * writer's commit. Nothing on SQLite: one file is one host, and followers there read the table on their own.
 */
export async function notifyTaskEvent(db: Db, id: string): Promise<void> {
  if (dialectOf(db) === 'postgres') await sql`select pg_notify(${TASK_CHANNEL}, ${id})`.execute(db);
}

export interface StoreListener {
  /** Resolves once the first LISTEN is in place (events recorded before it are read from the table, not announced). */
  ready: Promise<void>;
  close(): Promise<void>;
}

/**
 * Calls `onTask(id)` for every task event any process records on this PostgreSQL store (LISTEN, on a connection held
 * for the listener's life). A lost connection (a database restart) is made again after `retryMs`; meanwhile nothing
 * is delivered, which is no loss: listeners only learn *when* to read, and read the events from the table.
 * Undefined on SQLite.
 */
export function listenTaskEvents(db: Db, onTask: (id: string) => void, retryMs = 1000): StoreListener | undefined {
  const pool = storePools.get(db);
  if (!pool) return undefined;
  let closed = false;
  let client: pg.PoolClient | undefined;
  let timer: NodeJS.Timeout | undefined;
  let listening!: () => void;
  const ready = new Promise<void>((resolve) => (listening = resolve));
  const connect = async (): Promise<void> => {
    if (closed) return;
    try {
      const c = await pool.connect();
      const lost = (): void => {
        if (client !== c) return;
        client = undefined;
        c.release(true);
        if (!closed) timer = setTimeout(() => void connect(), retryMs);
      };
      c.on('notification', (n) => n.channel === TASK_CHANNEL && n.payload && onTask(n.payload));
      c.on('error', lost);
      c.on('end', lost);
      client = c;
      await c.query(`LISTEN ${TASK_CHANNEL}`);
      listening();
      if (closed) await release();
    } catch {
      if (!closed) timer = setTimeout(() => void connect(), retryMs);
    }
  };
  const release = async (): Promise<void> => {
    const c = client;
    client = undefined;
    if (!c) return;
    await c.query(`UNLISTEN ${TASK_CHANNEL}`).catch(() => undefined);
    c.release();
  };
  void connect();
  return {
    ready,
    close: async () => {
      closed = true;
      clearTimeout(timer);
      await release();
    },
  };
}
