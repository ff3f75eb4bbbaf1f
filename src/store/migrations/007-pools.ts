import { sql, type CreateTableBuilder, type Kysely, type Migration } from 'kysely';

/**
 * Pools, replicas (the replica map: one per image version + phase-1 digest + host + datastore), and what a pool's
 * children carry: their pool, the identity facts read from the guest at fork time, and the salted hash of their
 * machine password (never the password).
 */
/** The columns every stateful record ends with: its last error, its owner while transitional, its timestamps. */
function ownedRecord<T extends CreateTableBuilder<string, never>>(t: T): T {
  return t
    .addColumn('last_error', 'text')
    .addColumn('owner_pid', 'integer')
    .addColumn('owner_start_time', 'integer')
    .addColumn('owner_op', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull()) as T;
}

export const pools: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('replicas')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('image_name', 'text', (c) => c.notNull())
      .addColumn('image_version', 'text', (c) => c.notNull())
      .addColumn('phase1_digest', 'text', (c) => c.notNull())
      .addColumn('host_id', 'text', (c) => c.notNull().references('hosts.id'))
      .addColumn('datastore', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull().check(sql`state in ('creating','ready','deleting')`))
      .addColumn('dir', 'text', (c) => c.notNull())
      .addColumn('disks_json', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('phase1_json', 'text')
      .$call(ownedRecord)
      .addUniqueConstraint('replicas_map', ['image_version', 'phase1_digest', 'host_id', 'datastore'])
      .execute();
    await db.schema
      .createTable('pools')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('host_id', 'text', (c) => c.notNull().references('hosts.id'))
      .addColumn('state', 'text', (c) => c.notNull().check(sql`state in ('provisioning','ready','failed','deleting')`))
      .addColumn('spec_json', 'text', (c) => c.notNull())
      .addColumn('replica_id', 'text', (c) => c.references('replicas.id'))
      .addColumn('template_name', 'text')
      .addColumn('task_id', 'text')
      .$call(ownedRecord)
      .execute();
    await db.schema.alterTable('vms').addColumn('pool_name', 'text').execute();
    await db.schema.alterTable('vms').addColumn('facts_json', 'text').execute();
    await db.schema.alterTable('vms').addColumn('secret_hash', 'text').execute();
    await db.schema.alterTable('vms').addColumn('claimed_at', 'text').execute();
    await db.schema.createIndex('vms_pool').on('vms').column('pool_name').execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropIndex('vms_pool').execute();
    for (const c of ['claimed_at', 'secret_hash', 'facts_json', 'pool_name']) await db.schema.alterTable('vms').dropColumn(c).execute();
    await db.schema.dropTable('pools').execute();
    await db.schema.dropTable('replicas').execute();
  },
};
