import { type Kysely, type Migration } from 'kysely';

/**
 * Issue 14: an owner's pid means something only on its machine and boot. With several machines on one store, a
 * process must not judge another machine's owner dead because that pid is not running here (src/host/self.ts,
 * ownerAlive). Each owned table records the owner's `<machine-id>/<boot_id>`; null in rows from before.
 */
const OWNED = ['images', 'vms', 'templates', 'networks', 'tasks', 'pools', 'replicas'] as const;

export const ownerBoot: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    for (const table of OWNED) await db.schema.alterTable(table).addColumn('owner_boot', 'text').execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    for (const table of OWNED) await db.schema.alterTable(table).dropColumn('owner_boot').execute();
  },
};
