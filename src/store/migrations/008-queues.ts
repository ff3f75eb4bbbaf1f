import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Issue 11: tasks run in per-pool queues (`queue`, `lock`, `queued_behind`), and a replica's template is linked to
 * its replica by a column (`templates.replica_id`) instead of a name prefix. Templates made before are linked by
 * the prefix they were named with (`rt-<replica id>-…`).
 */
export const queues: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('tasks').addColumn('queue', 'text').execute();
    await db.schema.alterTable('tasks').addColumn('lock', 'text').execute();
    await db.schema.alterTable('tasks').addColumn('queued_behind', 'text').execute();
    await db.schema.createIndex('tasks_queue').on('tasks').columns(['queue', 'state']).execute();
    await db.schema.alterTable('templates').addColumn('replica_id', 'text').execute();
    await sql`update templates set replica_id = substr(name, 4, 12) where name like 'rt-%' and substr(name, 16, 1) = '-' and substr(name, 4, 12) in (select id from replicas)`.execute(db);
  },
};
