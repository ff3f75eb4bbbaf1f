import type { Db } from './db.js';
import type { SessionRow } from './schema.js';

/** Records a new session (its cookie's hash, never the cookie). */
export async function insertSession(db: Db, row: Omit<SessionRow, 'revoked_at'>): Promise<void> {
  await db.insertInto('sessions').values({ ...row, revoked_at: null }).execute();
}

/** The session of this hash if it is still good at `now`: not revoked, not expired. */
export async function liveSession(db: Db, idHash: string, now: string): Promise<SessionRow | undefined> {
  return db.selectFrom('sessions').selectAll().where('id_hash', '=', idHash).where('revoked_at', 'is', null).where('expires_at', '>', now).executeTakeFirst();
}

/** Ends a session at once (logout); true when it was live until now. */
export async function revokeSession(db: Db, idHash: string, at: string): Promise<boolean> {
  const r = await db.updateTable('sessions').set({ revoked_at: at }).where('id_hash', '=', idHash).where('revoked_at', 'is', null).executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/**
 * Forgets the sessions no cookie can use any more (expired or logged out) and returns how many; run at each login,
 * so the table holds about as many rows as there are live sessions. A forgotten row refuses its cookie as an
 * unknown one does.
 */
export async function deleteDeadSessions(db: Db, now: string): Promise<number> {
  const r = await db.deleteFrom('sessions').where((eb) => eb.or([eb('expires_at', '<=', now), eb('revoked_at', 'is not', null)])).executeTakeFirst();
  return Number(r.numDeletedRows);
}
