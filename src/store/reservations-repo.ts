import type { Db } from './db.js';
import type { PoolReservationRow } from './schema.js';

/** Reserves `max` children for a pool's resize (replacing an earlier one: the last resize wins). */
export async function putPoolReservation(db: Db, pool: string, max: number, now: string = new Date().toISOString()): Promise<void> {
  await db
    .insertInto('pool_reservations')
    .values({ pool, max, task_id: null, created_at: now })
    .onConflict((oc) => oc.column('pool').doUpdateSet({ max, task_id: null, created_at: now }))
    .execute();
}

/** Records the task that carries the reservation out: the reservation lives as long as that task. */
export async function setPoolReservationTask(db: Db, pool: string, taskId: string): Promise<void> {
  await db.updateTable('pool_reservations').set({ task_id: taskId }).where('pool', '=', pool).execute();
}

export async function getPoolReservation(db: Db, pool: string): Promise<PoolReservationRow | undefined> {
  return db.selectFrom('pool_reservations').selectAll().where('pool', '=', pool).executeTakeFirst();
}
