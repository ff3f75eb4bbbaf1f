import { type Kysely, type Migration } from 'kysely';

/**
 * Issue 14 item 2: hosts run agents that register them and send heartbeats. A host records what its agent reported
 * (CPUs, RAM, accelerator and why, QEMU version, protocol, address), its state (src/state/host-state.ts), its last
 * heartbeat (the database's clock, so hosts' clocks never compare with each other) and its generation: one more at
 * each agent start, the fence that keeps work of a lost host's old life from being run by its new one. The local
 * host (the server's own, id `local`) stays `up` with no agent. A datastore records its free space at the last
 * heartbeat.
 */
export const hostAgents: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .alterTable('hosts')
      .addColumn('state', 'text', (c) => c.notNull().defaultTo('up'))
      .execute();
    for (const [column, type] of [
      ['agent_protocol', 'integer'],
      ['agent_pid', 'integer'],
      ['agent_listen', 'text'],
      ['cpus', 'integer'],
      ['memory_bytes', 'integer'],
      ['accel', 'text'],
      ['accel_why', 'text'],
      ['qemu_version', 'text'],
      ['heartbeat_at', 'text'],
      ['lost_after_ms', 'integer'],
    ] as const) {
      await db.schema.alterTable('hosts').addColumn(column, type).execute();
    }
    await db.schema.alterTable('hosts').addColumn('generation', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    await db.schema.alterTable('datastores').addColumn('free_bytes', 'integer').execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('datastores').dropColumn('free_bytes').execute();
    for (const column of ['generation', 'lost_after_ms', 'heartbeat_at', 'qemu_version', 'accel_why', 'accel', 'memory_bytes', 'cpus', 'agent_listen', 'agent_pid', 'agent_protocol', 'state']) {
      await db.schema.alterTable('hosts').dropColumn(column).execute();
    }
  },
};
