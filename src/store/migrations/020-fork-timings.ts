import { type Kysely, type Migration } from 'kysely';

/**
 * Issue 15: the console shows, per pool child, when its last fork made it ready and how long that fork took. Both
 * are written where every fork ends (the `forking` → `running` transition, src/fork/child.ts), whichever task or
 * host ran it: a converge, a claim, a power-on or a release's refresh. Children from before stay null.
 */
export const forkTimings: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('vms').addColumn('forked_at', 'text').execute();
    await db.schema.alterTable('vms').addColumn('ready_ms', 'integer').execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('vms').dropColumn('ready_ms').execute();
    await db.schema.alterTable('vms').dropColumn('forked_at').execute();
  },
};
