import { z } from 'zod';
import { CLAIM_STATES, POOL_STATES, TASK_STATES, VM_ROLES, VM_STATES, type VmState } from '../state/index.js';
import { countTasks, countVms, listPoolReservations, listPoolRows, type Db, type VmCount } from '../store/index.js';
import type { VmforkMetrics } from './definitions.js';
import { storedJson } from './stored-json.js';

/** What a claim can take, as claimCandidates (store/claims-repo.ts) picks: a running spare, a warm or a registered child. */
const CLAIMABLE: readonly VmState[] = ['running', 'warm', 'registered'];

/** The part of a stored pool spec the size gauges read (the spec was validated when it was stored). */
const StoredSize = z.looseObject({
  size: z.looseObject({ max: z.number(), min: z.number().optional(), spares: z.number().optional(), warm: z.number().optional() }),
});

const sum = (rows: readonly VmCount[], keep: (r: VmCount) => boolean): number => rows.filter(keep).reduce((n, r) => n + r.n, 0);

/**
 * Pools, their children, VMs and tasks, as the store holds them now: every server and agent on the store counted,
 * not only this process's work. Each state of a known pool is set, zeros included, so a query for
 * `{pool="p1",state="running"}` answers 0 rather than nothing.
 */
export async function collectPoolGauges(db: Db, m: VmforkMetrics): Promise<void> {
  const [pools, vms, tasks, reservations] = await Promise.all([listPoolRows(db), countVms(db), countTasks(db), listPoolReservations(db)]);
  for (const g of [m.pools, m.poolState, m.poolChildren, m.poolReadyChildren, m.poolSpareChildren, m.poolClaims, m.poolSize, m.poolReservations, m.poolReservedMax, m.vms, m.tasks]) g.reset();

  for (const state of POOL_STATES) m.pools.set({ state }, pools.filter((p) => p.state === state).length);
  for (const p of pools) {
    for (const state of POOL_STATES) m.poolState.set({ pool: p.name, state }, p.state === state ? 1 : 0);
    const mine = vms.filter((v) => v.pool === p.name);
    for (const state of VM_STATES) m.poolChildren.set({ pool: p.name, state }, sum(mine, (v) => v.state === state));
    const free = mine.filter((v) => v.role === 'child' && v.claim === 'unclaimed');
    m.poolReadyChildren.set({ pool: p.name }, sum(free, (v) => CLAIMABLE.includes(v.state)));
    m.poolSpareChildren.set({ pool: p.name }, sum(free, (v) => v.state === 'running'));
    for (const state of CLAIM_STATES.filter((s) => s !== 'unclaimed')) m.poolClaims.set({ pool: p.name, state }, sum(mine, (v) => v.claim === state));
    const spec = storedJson(StoredSize, p.spec_json);
    if (spec) {
      const { max, min = 0, spares = 0, warm = 0 } = spec.size;
      for (const [bound, value] of Object.entries({ max, min, spares, warm })) m.poolSize.set({ pool: p.name, bound }, value);
    }
  }
  m.poolReservations.set(reservations.length);
  for (const r of reservations) m.poolReservedMax.set({ pool: r.pool }, r.max);

  for (const role of VM_ROLES) {
    for (const state of VM_STATES) m.vms.set({ state, role }, sum(vms, (v) => v.role === role && v.state === state));
  }
  for (const kind of new Set(tasks.map((t) => t.kind))) {
    for (const state of TASK_STATES) m.tasks.set({ state, kind }, tasks.filter((t) => t.kind === kind && t.state === state).reduce((n, t) => n + t.n, 0));
  }
}
