import { poolCustomizer } from '../customize/index.js';
import { forkChildren } from '../fork/index.js';
import { parsePoolSpec } from '../pool/index.js';
import { ensureReplica, ensureReplicaTemplate } from '../replica/index.js';
import { poolVms, requirePool } from '../store/index.js';
import { reporter } from './replica-steps.js';
import type { StepContext } from './step-context.js';

/**
 * A placed pool's part on this host (src/pool/placed.ts): the pool's replica here (the server had it received
 * first, so the replica map finds it by its key), the replica's template here, and these children forked from it
 * with the pool's phase 2. Run again, each finds its own work: the replica and template by key and name, and the
 * children already running here are not forked again.
 */
export async function convergePoolHere(ctx: StepContext, pool: string, names: string[], signal: AbortSignal): Promise<Record<string, unknown>> {
  const { deps } = ctx;
  const spec = parsePoolSpec(JSON.parse((await requirePool(deps.db, pool)).spec_json));
  const { replica } = await ensureReplica(deps, spec, reporter(ctx, 'pool-host-converge'));
  const template = await ensureReplicaTemplate(deps, replica, spec, reporter(ctx, 'pool-host-converge'));
  const running = new Set((await poolVms(deps.db, pool)).filter((v) => v.host_id === deps.hostId && v.state === 'running').map((v) => v.name));
  const todo = names.filter((n) => !running.has(n));
  const readyMs: Record<string, number> = {};
  const forked = names.filter((n) => running.has(n));
  const failed: { name: string; code: string; message: string }[] = [];
  if (todo.length) {
    const customize = poolCustomizer(spec);
    const r = await forkChildren(deps, {
      template: template.row.name,
      count: todo.length,
      names: todo,
      network: spec.network,
      pool,
      stopOnError: spec.stopOnError,
      signal,
      ...(customize ? { customize } : {}),
    });
    for (const c of r.children) {
      forked.push(c.name);
      readyMs[c.name] = Math.round(c.timings.customizedMs ?? c.timings.readyMs);
    }
    for (const f of r.failed) failed.push({ name: f.name, code: f.error.code, message: f.error.message.split('\n')[0] ?? '' });
    for (const s of r.skipped) failed.push({ name: s, code: 'VMFORK_FORK_FAILED', message: 'not forked: an earlier child failed (stopOnError)' });
  }
  return { host: deps.hostId, replica: replica.id, template: template.row.name, forked, readyMs, failed };
}
