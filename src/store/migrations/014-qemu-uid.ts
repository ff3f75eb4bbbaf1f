import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Issue 13 item 1: each VM's QEMU runs as a uid of its own (src/config/qemu-user.ts). The uid is recorded with the VM
 * (kept across restarts, reverts and a warm process's rename to its child) and the unique index is what makes it
 * one VM's alone: two VMs taking the same free uid at once cannot both commit. Null until its first launch.
 */
export const qemuUid: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('vms').addColumn('qemu_uid', 'integer').execute();
    await sql`CREATE UNIQUE INDEX vms_qemu_uid ON vms (qemu_uid) WHERE qemu_uid IS NOT NULL`.execute(db);
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await sql`DROP INDEX vms_qemu_uid`.execute(db);
    await db.schema.alterTable('vms').dropColumn('qemu_uid').execute();
  },
};
