import { sql } from 'kysely';
import { claimStateMachine, type ClaimState } from '../state/index.js';
import type { Db } from './db.js';
import type { VmRow } from './schema.js';

export interface ClaimFields {
  user: string | null;
  expiresAt: string | null;
}

/**
 * Moves a child's claim `from` → `to` as a compare-and-set (and, when `vmState` is given, only while the VM is in
 * that state): true when this call made the move, false when the row had moved on (another claim won it).
 */
export async function moveClaim(db: Db, name: string, from: ClaimState, to: ClaimState, fields: Partial<ClaimFields> = {}, vmState?: VmRow['state']): Promise<boolean> {
  claimStateMachine.assertTransition(from, to, name);
  const now = new Date().toISOString();
  const set =
    to === 'unclaimed'
      ? { claim_state: to, claimed_at: null, claimed_by: null, claim_expires_at: null, updated_at: now }
      : to === 'claimed'
        ? { claim_state: to, claimed_at: now, claimed_by: fields.user ?? null, claim_expires_at: fields.expiresAt ?? null, updated_at: now }
        : { claim_state: to, updated_at: now };
  let q = db.updateTable('vms').set(set).where('name', '=', name).where('claim_state', '=', from);
  if (vmState) q = q.where('state', '=', vmState);
  const r = await q.executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Children of a pool a claim could take, best first: running spares, then warm children (only a resume left), then registered ones (to fork). */
export async function claimCandidates(db: Db, pool: string): Promise<VmRow[]> {
  return db
    .selectFrom('vms')
    .selectAll()
    .where('pool_name', '=', pool)
    .where('claim_state', '=', 'unclaimed')
    .where('state', 'in', ['running', 'warm', 'registered'])
    .where('role', '=', 'child')
    .orderBy(sql`case state when 'running' then 0 when 'warm' then 1 else 2 end`)
    .orderBy('name')
    .execute();
}

/** Claimed or releasing children, of every pool or one. */
export async function claimedVms(db: Db, pool?: string): Promise<VmRow[]> {
  let q = db.selectFrom('vms').selectAll().where('claim_state', '!=', 'unclaimed').where('pool_name', 'is not', null);
  if (pool) q = q.where('pool_name', '=', pool);
  return q.orderBy('claimed_at').execute();
}

/** Claims whose TTL ended by `now`. */
export async function expiredClaims(db: Db, now: string): Promise<VmRow[]> {
  return db.selectFrom('vms').selectAll().where('claim_state', '=', 'claimed').where('claim_expires_at', 'is not', null).where('claim_expires_at', '<=', now).execute();
}
