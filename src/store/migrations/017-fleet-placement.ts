import { type Kysely, type Migration } from 'kysely';

/**
 * Issue 14 items 2 and 5. A template lives on one host (its files, the QEMU its warm processes and children fork
 * from): its record says which, `local` for those made before.
 *
 * Item 6: a placed pool's child on a lost host is replaced on another (a new name and address: the old one may
 * still run); `replaced_by` names its replacement, and fences it: its host's agent, back, destroys it instead of
 * reviving it.
 *
 * Item 5: a network spans the hosts its VMs run on, each host's bridge joined to the others' by VXLAN. The
 * VXLAN network identifier is the network's across the fleet: drawn once, on the first use on an agent's host
 * (null until then: a network used on one host needs none), and unique, so two networks never share a segment.
 */
export const fleetPlacement: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('networks').addColumn('vni', 'integer').execute();
    await db.schema.createIndex('networks_vni').unique().on('networks').column('vni').execute();
    await db.schema
      .alterTable('templates')
      .addColumn('host_id', 'text', (c) => c.notNull().defaultTo('local'))
      .execute();
    await db.schema.alterTable('vms').addColumn('replaced_by', 'text').execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('vms').dropColumn('replaced_by').execute();
    await db.schema.alterTable('templates').dropColumn('host_id').execute();
    await db.schema.dropIndex('networks_vni').execute();
    await db.schema.alterTable('networks').dropColumn('vni').execute();
  },
};
