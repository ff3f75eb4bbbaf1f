import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Issue 12: a pool child's claim is a small state machine of its own (`claim_state`, src/state/claim-state.ts),
 * with who holds it and until when. Children claimed before (a power-on) keep their claim.
 */
export const claims: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('vms').addColumn('claim_state', 'text', (c) => c.notNull().defaultTo('unclaimed')).execute();
    await db.schema.alterTable('vms').addColumn('claimed_by', 'text').execute();
    await db.schema.alterTable('vms').addColumn('claim_expires_at', 'text').execute();
    await sql`update vms set claim_state = 'claimed' where claimed_at is not null`.execute(db);
    await db.schema.createIndex('vms_claims').on('vms').columns(['pool_name', 'claim_state']).execute();
  },
};
