import type { Kysely, Migration } from 'kysely';

/** Datastores of each host: where replicas and pool disks live (`default` is `<home>/datastores/default`). */
export const datastores: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('datastores')
      .addColumn('host_id', 'text', (c) => c.notNull().references('hosts.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('path', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('datastores_pk', ['host_id', 'name'])
      .execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('datastores').execute();
  },
};
