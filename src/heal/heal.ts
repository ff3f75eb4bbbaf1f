import { toVmforkError } from '../errors.js';
import { actorFor, ownerAlive } from '../host/index.js';
import { healImage } from '../image/index.js';
import { healNetwork } from '../network/index.js';
import type { OwnerOp } from '../state/index.js';
import { getImage, getNetwork, getReplica, getTemplate, getVm, takeOver, transitionalRows, type StatefulTable, type TransitionalRow } from '../store/index.js';
import { healTemplate } from '../template/index.js';
import { healVm, type VmDeps } from '../vm/index.js';

/** One record healed (or that could not be): what it was doing, whose process died, and what was done about it. */
export interface Healed {
  resource: 'template' | 'VM' | 'network' | 'image' | 'replica';
  name: string;
  /** The transitional state it was left in. */
  state: string;
  op: OwnerOp | null;
  deadOwnerPid: number | null;
  ok: boolean;
  /** What was finished or rolled back, or why healing failed (the next command tries again). */
  detail: string;
}

// tasks and pools are not healed here: only a server has their runners, and it recovers them at start
// (src/provision/); a half-made replica is rolled back (src/provision/)
type HealedTable = Exclude<StatefulTable, 'tasks' | 'pools'>;

const RESOURCE: Record<HealedTable, Healed['resource']> = { replicas: 'replica', templates: 'template', vms: 'VM', networks: 'network', images: 'image' };

/**
 * Finds every record left in a transitional state by a vmfork process that is gone (killed, crashed, host rebooted)
 * and finishes or rolls back its work: no forking child, half-made template, tap, lease, overlay or QEMU is left to
 * linger. Records whose owner still runs are that process's business and are left alone. Each record is taken over
 * with a compare-and-set on its dead owner, so concurrent healers never do the same work twice. Replicas go first
 * (their internal clone goes with them), templates (their parent VM goes with them), then VMs, networks (which
 * VMs' leases pin) and images (which templates pin).
 * Never throws: a record that cannot be healed now is reported and tried again by the next command.
 */
export async function healInterrupted(deps: VmDeps): Promise<Healed[]> {
  const out: Healed[] = [];
  for (const table of ['replicas', 'templates', 'vms', 'networks', 'images'] as const) {
    for (const row of await transitionalRows(deps.db, table)) {
      if (await ownerAlive({ pid: row.owner_pid, startTime: row.owner_start_time, boot: row.owner_boot })) continue;
      const healed = await healOne(deps, table, row);
      if (healed) out.push(healed);
    }
  }
  return out;
}

async function healOne<T extends HealedTable>(deps: VmDeps, table: T, row: TransitionalRow<T>): Promise<Healed | undefined> {
  const actor = await actorFor(row.owner_op ?? 'destroy');
  // someone else healing it, or it moved on since we looked: not ours to touch
  if (!(await takeOver(deps.db, table, row.name, row.state, row, actor))) return undefined;
  const base = { resource: RESOURCE[table], name: row.name, state: row.state, op: row.owner_op, deadOwnerPid: row.owner_pid };
  try {
    const detail = await healRow(deps, table, row.name, actor);
    deps.log.warn({ ...base, detail }, 'healed a record left by a vmfork process that died');
    return { ...base, ok: true, detail };
  } catch (err) {
    const e = toVmforkError(err);
    deps.log.error({ ...base, err }, 'healing failed; the next vmfork command tries again');
    return { ...base, ok: false, detail: `${e.code}: ${e.message}` };
  }
}

async function healRow(deps: VmDeps, table: HealedTable, name: string, actor: Awaited<ReturnType<typeof actorFor>>): Promise<string> {
  const gone = 'record already gone';
  switch (table) {
    case 'templates': {
      const t = await getTemplate(deps.db, name);
      return t ? healTemplate(deps, t, actor) : gone;
    }
    case 'vms': {
      const vm = await getVm(deps.db, name);
      return vm ? healVm(deps, vm, actor) : gone;
    }
    case 'networks': {
      const net = await getNetwork(deps.db, name);
      return net ? healNetwork(deps.db, net, actor) : gone;
    }
    case 'replicas': {
      const replica = await getReplica(deps.db, name);
      if (!replica) return gone;
      // loaded only when a replica needs healing: the provisioning room costs every command ~0.1 s to load
      const { healReplica } = await import('../replica/index.js');
      return healReplica(deps, replica, actor);
    }
    case 'images': {
      const image = await getImage(deps.db, name);
      return image ? healImage(deps.db, deps.home.images, image, actor) : gone;
    }
  }
}

/** The line a command prints for a healed record: `healed VM web-3 (forking; vmfork pid 1234 died): rolled back: …`. */
export function healedLine(h: Healed): string {
  const who = h.deadOwnerPid === null ? 'no owner recorded' : `vmfork pid ${h.deadOwnerPid} died`;
  return `${h.ok ? 'healed' : 'could not heal'} ${h.resource} ${h.name} (${h.state}; ${who}): ${h.detail}`;
}
