import { sql, type Kysely, type Migration } from 'kysely';

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
      .addColumn('created_at', 'text', (c) => c.notNull().defaultTo(sql`(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))`))
      .execute();
  },
};
