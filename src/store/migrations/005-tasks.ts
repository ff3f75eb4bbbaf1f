import { sql, type Kysely, type Migration } from 'kysely';

/** Tasks (one per pool operation) and their numbered events; see docs/tasks.md. */
export const tasks: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('tasks')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('target', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull().check(sql`state in ('queued','running','cancelling','succeeded','failed','cancelled')`))
      .addColumn('step', 'text')
      .addColumn('percent', 'integer', (c) => c.notNull().defaultTo(0).check(sql`percent between 0 and 100`))
      .addColumn('progress_json', 'text', (c) => c.notNull().defaultTo('{}'))
      .addColumn('input_json', 'text', (c) => c.notNull())
      .addColumn('result_json', 'text')
      .addColumn('last_error', 'text')
      .addColumn('owner_pid', 'integer')
      .addColumn('owner_start_time', 'integer')
      .addColumn('owner_op', 'text')
      .addColumn('host_id', 'text', (c) => c.notNull().references('hosts.id'))
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('tasks_target').on('tasks').columns(['target', 'created_at']).execute();
    await db.schema.createIndex('tasks_state').on('tasks').column('state').execute();
    await db.schema
      .createTable('task_events')
      .addColumn('task_id', 'text', (c) => c.notNull().references('tasks.id').onDelete('cascade'))
      .addColumn('seq', 'integer', (c) => c.notNull())
      .addColumn('at', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('message', 'text', (c) => c.notNull())
      .addColumn('data_json', 'text')
      .addPrimaryKeyConstraint('task_events_pk', ['task_id', 'seq'])
      .execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('task_events').execute();
    await db.schema.dropTable('tasks').execute();
  },
};
