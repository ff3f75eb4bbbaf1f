import { sql, type Kysely, type Migration } from 'kysely';
import { dialectOf } from '../dialect.js';

/**
 * Issue 13: a resize reserves its pool's new size in the same transaction as its capacity check, before its task is
 * queued, so a create checked in between counts it (src/pool/disk-budget.ts). One row per pool, gone with it.
 */
export const poolReservations: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('pool_reservations')
      .addColumn('pool', 'text', (c) => c.primaryKey().references('pools.name').onDelete('cascade'))
      .addColumn('max', 'integer', (c) => c.notNull())
      .addColumn('task_id', 'text')
      // the ISO instant every other created_at holds (toISOString), made by the database in its own words
      .addColumn('created_at', 'text', (c) =>
        c.notNull().defaultTo(
          dialectOf(db) === 'postgres'
            ? sql`(to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))`
            : sql`(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))`,
        ),
      )
      .execute();
  },
};
