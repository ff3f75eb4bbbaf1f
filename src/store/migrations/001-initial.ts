import { sql, type Kysely, type Migration } from 'kysely';
import { dialectOf } from '../dialect.js';

export const initial: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('hosts')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('hostname', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('images')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('source', 'text', (c) => c.notNull().check(sql`source in ('built','imported')`))
      .addColumn('disk_path', 'text', (c) => c.notNull())
      .addColumn('kernel_path', 'text')
      .addColumn('initrd_path', 'text')
      .addColumn('manifest_path', 'text')
      .addColumn('recipe_hash', 'text')
      .addColumn('virtual_size', 'integer', (c) => c.notNull())
      .addColumn('file_size', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('vms')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('host_id', 'text', (c) => c.notNull().references('hosts.id'))
      .addColumn('image_name', 'text', (c) => c.references('images.name'))
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('dir', 'text', (c) => c.notNull())
      .addColumn('spec_json', 'text', (c) => c.notNull())
      .addColumn('last_error', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('vms_image').on('vms').column('image_name').execute();
    await db.schema
      .createTable('processes')
      .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
      // deferrable on PostgreSQL: a warm process's record is renamed to its child's name with its process rows in
      // one transaction (vms-repo's renameWarmVm), checked at commit; SQLite defers with a pragma instead
      .addColumn('vm_name', 'text', (c) => {
        const fk = c.notNull().references('vms.name').onDelete('cascade');
        return dialectOf(db) === 'postgres' ? fk.modifyEnd(sql`deferrable initially immediate`) : fk;
      })
      .addColumn('pid', 'integer', (c) => c.notNull())
      .addColumn('start_time', 'integer', (c) => c.notNull())
      .addColumn('qmp_path', 'text', (c) => c.notNull())
      .addColumn('agent_path', 'text')
      .addColumn('pidfile', 'text', (c) => c.notNull())
      .addColumn('argv_json', 'text', (c) => c.notNull())
      .addColumn('started_at', 'text', (c) => c.notNull())
      .addColumn('exited_at', 'text')
      .execute();
    await db.schema.createIndex('processes_vm').on('processes').column('vm_name').execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('processes').execute();
    await db.schema.dropTable('vms').execute();
    await db.schema.dropTable('images').execute();
    await db.schema.dropTable('hosts').execute();
  },
};
