import { isSameProcess } from '../host/index.js';
import { allocateLeaseIn } from '../network/index.js';
import { decodeVmSpec, parseVmSpec } from '../spec/index.js';
import type { Actor } from '../state/index.js';
import { currentProcess, listLeases, renameWarmVm, templateWarmVms, transition, type Db, type VmRow } from '../store/index.js';
import type { ReadyTemplate } from '../template/index.js';
import { vmPathsIn, type VmDeps } from '../vm/index.js';
import type { ReservedChild } from './reserved.js';

/** A warm process a fork may take: waiting, its QEMU alive, on the fork's network. */
export interface WarmCandidate {
  row: VmRow;
  network: string;
  pid: number;
  startTime: number;
}

/**
 * The template's warm processes a fork can take, oldest first. Checked before the fork's transaction with what
 * costs no guest time: the record says `warm`, its QEMU is the same process (pid + start time), its lease is on
 * the fork's network. One whose QEMU is gone is left to reconciliation (it becomes `failed`; the refill removes it).
 */
export async function warmCandidates(deps: VmDeps, t: ReadyTemplate, network: string): Promise<WarmCandidate[]> {
  const rows = (await templateWarmVms(deps.db, t.row.name)).filter((r) => r.state === 'warm');
  if (rows.length === 0) return [];
  const leases = await listLeases(deps.db);
  const out: WarmCandidate[] = [];
  for (const row of rows) {
    const proc = await currentProcess(deps.db, row.name);
    const lease = leases.find((l) => l.vm_name === row.name);
    if (!proc || lease?.network_name !== network) continue;
    if (await isSameProcess(proc.pid, proc.start_time)) out.push({ row, network, pid: proc.pid, startTime: proc.start_time });
  }
  return out;
}

/**
 * Inside the fork's write transaction: the first candidate still `warm` becomes child `name` — its record, process
 * and lease renamed, then `warm → forking` owned by the fork (a fork that dies leaves it to heal, like any child it
 * was forking), role child. Undefined when no candidate is left (another fork took them): the child is made cold.
 */
export async function takeWarm(conn: Db, candidates: WarmCandidate[], name: string, actor: Actor, pool: string | undefined): Promise<ReservedChild | undefined> {
  for (let c = candidates.shift(); c !== undefined; c = candidates.shift()) {
    if (!(await renameWarmVm(conn, c.row.name, name))) continue;
    // the QEMU keeps its -name; the spec is the one it was launched with, under the child's name
    const spec = parseVmSpec({ ...decodeVmSpec(c.row.spec_json), name });
    await transition(conn, 'vms', name, 'warm', 'forking', actor, { role: 'child', pool_name: pool ?? null, spec_json: JSON.stringify(spec) });
    const lease = await allocateLeaseIn(conn, { network: c.network, vmName: name, host: c.row.host_id });
    return { name, lease, paths: vmPathsIn(c.row.dir), spec, warm: { pid: c.pid, startTime: c.startTime } };
  }
  return undefined;
}
