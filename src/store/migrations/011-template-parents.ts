import type { Kysely, Migration } from 'kysely';

/**
 * Issue 12 item 9: a template made from a running child (`template create --from-vm`) stands on its child's
 * template — its disks are overlays on that template's disks — so the template tree is recorded: `parent_name` is
 * the template a template stands on (null for one made from an image). A template with templates on it cannot be
 * removed; the column is written with the row, so even a template still being created pins its parent.
 */
export const templateParents: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('templates').addColumn('parent_name', 'text').execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('templates').dropColumn('parent_name').execute();
  },
};
