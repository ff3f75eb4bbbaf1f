import { type Kysely, type Migration } from 'kysely';

/**
 * Issue 14 item 4: a host's room counts CPU as well as memory and disk. Its agent reports how many vCPUs it lets
 * run per host CPU (`--cpu-allocation-ratio`, Nova's name and default); null for the local host and for agents from
 * before, which then count with that default.
 */
export const cpuRatio: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('hosts').addColumn('cpu_allocation_ratio', 'real').execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('hosts').dropColumn('cpu_allocation_ratio').execute();
  },
};
