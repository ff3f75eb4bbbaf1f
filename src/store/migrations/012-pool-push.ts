import type { Kysely, Migration } from 'kysely';

/** Issue 12 item 6: an image or spec pushed to a pool records its progress on the pool (`push_json`, src/pool/push.ts). */
export const poolPush: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('pools').addColumn('push_json', 'text').execute();
  },
};
