import { type Kysely, type Migration } from 'kysely';

/**
 * Issue 15: the web console logs in once with the API token and then holds a session cookie. Sessions live in the
 * store, not in a server's memory, so every server on a shared store knows them and a logout (revoked_at) holds on
 * all of them. A row is keyed by the sha256 of the cookie's value; the value is never stored (src/api/session.ts).
 */
export const sessions: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('sessions')
      .addColumn('id_hash', 'text', (c) => c.primaryKey())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .addColumn('revoked_at', 'text')
      .execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('sessions').execute();
  },
};
