import type { Kysely, Migration } from 'kysely';

export const templates: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('templates')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('image_name', 'text', (c) => c.notNull().references('images.name'))
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('dir', 'text', (c) => c.notNull())
      .addColumn('spec_json', 'text', (c) => c.notNull())
      .addColumn('record_json', 'text')
      .addColumn('last_error', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.alterTable('vms').addColumn('template_name', 'text').execute();
    await db.schema.createIndex('vms_template').on('vms').column('template_name').execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropIndex('vms_template').execute();
    await db.schema.alterTable('vms').dropColumn('template_name').execute();
    await db.schema.dropTable('templates').execute();
  },
};
