import { sql, type Kysely, type Migration } from 'kysely';

const OWNED = ['vms', 'templates', 'networks', 'images'] as const;

/**
 * Owner columns on every resource with a state (who runs the operation a transitional state belongs to), a state
 * and updated_at for images, updated_at for networks, and the settings table (the data dir's namespace prefix).
 */
export const owners: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    for (const table of OWNED) {
      await db.schema.alterTable(table).addColumn('owner_pid', 'integer').execute();
      await db.schema.alterTable(table).addColumn('owner_start_time', 'integer').execute();
      await db.schema.alterTable(table).addColumn('owner_op', 'text').execute();
    }
    await db.schema
      .alterTable('images')
      .addColumn('state', 'text', (c) => c.notNull().defaultTo('ready').check(sql`state in ('importing','ready','deleting')`))
      .execute();
    for (const table of ['images', 'networks'] as const) {
      await db.schema.alterTable(table).addColumn('updated_at', 'text', (c) => c.notNull().defaultTo('')).execute();
      await sql`update ${sql.table(table)} set updated_at = created_at`.execute(db);
    }
    await db.schema
      .createTable('settings')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('value', 'text', (c) => c.notNull())
      .execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('settings').execute();
    for (const table of ['images', 'networks'] as const) await db.schema.alterTable(table).dropColumn('updated_at').execute();
    await db.schema.alterTable('images').dropColumn('state').execute();
    for (const table of OWNED) {
      for (const column of ['owner_op', 'owner_start_time', 'owner_pid']) await db.schema.alterTable(table).dropColumn(column).execute();
    }
  },
};
