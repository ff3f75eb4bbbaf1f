import { sql, type Kysely, type Migration } from 'kysely';

export const networks: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('networks')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('cidr', 'text', (c) => c.notNull())
      .addColumn('netns', 'text', (c) => c.notNull().unique())
      .addColumn('bridge', 'text', (c) => c.notNull())
      .addColumn('gateway', 'text', (c) => c.notNull())
      .addColumn('owner_id', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull().check(sql`state in ('creating','ready','deleting')`))
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
    // No foreign key to vms: a lease is taken before the VM row of a fork exists, and the fork engine releases it.
    await db.schema
      .createTable('ip_leases')
      .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
      .addColumn('network_name', 'text', (c) => c.notNull().references('networks.name'))
      .addColumn('ip', 'text', (c) => c.notNull())
      .addColumn('vm_name', 'text', (c) => c.notNull())
      .addColumn('mac', 'text', (c) => c.notNull().unique())
      .addColumn('tap', 'text', (c) => c.notNull())
      .addColumn('allocated_at', 'text', (c) => c.notNull())
      .addUniqueConstraint('ip_leases_network_ip', ['network_name', 'ip'])
      .addUniqueConstraint('ip_leases_network_vm', ['network_name', 'vm_name'])
      .addUniqueConstraint('ip_leases_network_tap', ['network_name', 'tap'])
      .execute();
    await db.schema.createIndex('ip_leases_vm').on('ip_leases').column('vm_name').execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('ip_leases').execute();
    await db.schema.dropTable('networks').execute();
  },
};
