import { z } from 'zod';
import { VmforkError } from '../errors.js';
import { CLAIM_STATES } from '../state/index.js';
import { claimCandidates, claimedVms, listLeases, moveClaim, poolVms, type Db, type VmRow } from '../store/index.js';
import { wholeNumber } from './spec-limits.js';

/**
 * Claims of pool children (issue 12 item 1, docs/lifecycle.md): who holds which child, since when and until when.
 * A claim reserves a child by compare-and-set on its claim state (store/claims-repo.ts) before anything else, so
 * two claims never get one child and a claim never takes a child that is being given back.
 */

/** Longest TTL a claim may ask for: 30 days (a desktop kept longer is a persistent pool's job). */
export const MAX_TTL_SECONDS = 30 * 24 * 3600;
/** Longest a claim may wait for a child to come free. */
export const MAX_CLAIM_WAIT_SECONDS = 3600;

export const ClaimRequestSchema = z.strictObject({
  user: z.string().min(1).max(64).regex(/^[\w.@+-]+$/, { error: 'must be 1-64 letters, digits or . _ @ + -' }).optional().describe('who the child is for (recorded, shown in GET /v1/claims)'),
  ttlSeconds: wholeNumber(1, MAX_TTL_SECONDS, 'seconds').optional().describe('the child is released (refreshed) this long after the claim'),
  waitSeconds: wholeNumber(0, MAX_CLAIM_WAIT_SECONDS, 'seconds').optional().describe('with nothing left, wait this long for a child to come free instead of answering 409'),
});
export type ClaimRequest = z.infer<typeof ClaimRequestSchema>;

export const ClaimViewSchema = z.object({
  vm: z.string(),
  pool: z.string(),
  user: z.string().nullable(),
  state: z.enum(CLAIM_STATES),
  ip: z.string().nullable(),
  mac: z.string().nullable(),
  /** SHA256 fingerprints of the host keys the child's sshd serves (as `vmfork ssh` checks them). */
  sshHostKeys: z.array(z.string()),
  claimedAt: z.string().nullable(),
  expiresAt: z.string().nullable(),
  /** Users of the child's open login sessions, as its guest reports them; null when they are not watched (release.on without logoff). */
  sessions: z.array(z.string()).nullable(),
});
export type ClaimView = z.infer<typeof ClaimViewSchema>;

export const ClaimResultSchema = ClaimViewSchema.extend({
  /** `spare`: a running spare was handed out; `warm`: a warm child was resumed for it; `forked`: a registered child was forked for it. */
  how: z.enum(['spare', 'warm', 'forked']),
  /** Milliseconds from the request to the ready child. */
  tookMs: z.number().int().min(0),
  taskId: z.string(),
  /** The converge the claim queued to top the pool's spares up, when it did. */
  followUp: z.string().optional(),
});
export type ClaimResult = z.infer<typeof ClaimResultSchema>;

export async function claimView(db: Db, vm: VmRow): Promise<ClaimView> {
  const facts = vm.facts_json ? (JSON.parse(vm.facts_json) as { sshHostKeyFingerprints?: string[] }) : {};
  const lease = (await listLeases(db)).find((l) => l.vm_name === vm.name);
  return {
    vm: vm.name,
    pool: vm.pool_name ?? '',
    user: vm.claimed_by,
    state: vm.claim_state,
    ip: lease?.ip ?? null,
    mac: lease?.mac ?? null,
    sshHostKeys: facts.sshHostKeyFingerprints ?? [],
    claimedAt: vm.claimed_at,
    expiresAt: vm.claim_expires_at,
    sessions: null,
  };
}

export async function listClaimViews(db: Db, pool?: string): Promise<ClaimView[]> {
  return Promise.all((await claimedVms(db, pool)).map((v) => claimView(db, v)));
}

/**
 * Reserves the best free child of `pool` for a claim: a running spare (handed out as it is), else a registered
 * child (forked for it). Each candidate is a compare-and-set; one another claim won is skipped.
 */
export async function reserveChild(db: Db, pool: string, fields: { user: string | null; expiresAt: string | null }): Promise<{ vm: string; how: 'spare' | 'warm' | 'forked' } | undefined> {
  for (const c of await claimCandidates(db, pool)) {
    if (await moveClaim(db, c.name, 'unclaimed', 'claimed', fields, c.state)) return { vm: c.name, how: c.state === 'running' ? 'spare' : c.state === 'warm' ? 'warm' : 'forked' };
  }
  return undefined;
}

/** The 409 of a claim that found nothing: the pool's children per VM state and per claim state. */
export async function exhausted(db: Db, pool: string, waitedSeconds: number): Promise<VmforkError> {
  const counts: Record<string, number> = {};
  for (const v of await poolVms(db, pool)) {
    const key = v.claim_state === 'unclaimed' ? v.state : v.claim_state;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  const said = Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(', ') || 'no children';
  return new VmforkError('VMFORK_POOL_EXHAUSTED', `pool ${pool} has no child left to claim (${said})${waitedSeconds ? ` after waiting ${waitedSeconds} s` : ''}`, {
    details: { pool, counts, waitedSeconds },
  });
}
