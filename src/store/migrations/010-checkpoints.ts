import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Issue 12 item 7: a running VM's checkpoints. One row per checkpoint, written only once its files are complete
 * (the frozen disks and, with memory, the device + RAM state saved from the same stopped instant). A VM's rows go
 * with it (ON DELETE CASCADE); its files live in its directory, which destroy removes whole.
 */
export const checkpoints: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('checkpoints')
      .addColumn('vm_name', 'text', (c) => c.notNull().references('vms.name').onDelete('cascade').onUpdate('cascade'))
      .addColumn('label', 'text', (c) => c.notNull())
      .addColumn('memory', 'integer', (c) => c.notNull().check(sql`memory in (0, 1)`))
      .addColumn('state_path', 'text')
      .addColumn('disks_json', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addUniqueConstraint('checkpoints_label', ['vm_name', 'label'])
      .execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('checkpoints').execute();
  },
};
