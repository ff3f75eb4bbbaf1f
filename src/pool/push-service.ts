import { VmforkError } from '../errors.js';
import { poolVms, requirePool, updatePool } from '../store/index.js';
import type { Enqueued } from '../task/index.js';
import type { VmDeps } from '../vm/index.js';
import type { RunTask } from './claim-service.js';
import { poolSpecOf } from './converge.js';
import { assertPushable, PUSH_MODES, type PushMode } from './push.js';
import { checkSpecBounds } from './capacity.js';
import { parsePoolSpec } from './spec.js';

export interface PushRequest {
  /** Never fewer ready children than this while it replaces. @default 0 */
  minReady?: number;
  /** @default 'at-release' */
  mode?: PushMode;
  /** `force`: how long claimed children's users have after the notice. @default 60 */
  graceSeconds?: number;
}

/** `pool update`: an image or spec pushed to a running pool (src/pool/push.ts). */
export function createPushService(deps: VmDeps, run: RunTask, assertNotRemoving: (pool: string) => Promise<void>) {
  return {
    /**
     * Checks the pushed spec (shape, what it names, what a running child cannot change, min-ready against the
     * pool), then queues the push in the pool's queue. Nothing is changed by a refused push.
     */
    async updatePool(name: string, input: unknown, request: PushRequest = {}): Promise<Enqueued & { pool: string }> {
      const row = await requirePool(deps.db, name);
      await assertNotRemoving(name);
      const next = parsePoolSpec(input);
      assertPushable(poolSpecOf(row), next);
      await checkSpecBounds(deps.db, next);
      const mode = request.mode ?? 'at-release';
      if (!PUSH_MODES.includes(mode)) throw new VmforkError('VMFORK_INVALID_ARGUMENT', `mode must be one of ${PUSH_MODES.join(', ')}`, { details: { field: 'mode' } });
      const minReady = request.minReady ?? 0;
      const running = (await poolVms(deps.db, name)).filter((v) => v.state === 'running').length;
      // a child is replaced while the others serve: min-ready must leave room for one at a time
      if (!Number.isInteger(minReady) || minReady < 0 || (minReady > 0 && minReady > running - 1)) {
        throw new VmforkError('VMFORK_INVALID_ARGUMENT', `min-ready ${minReady} leaves no child to replace: pool ${name} has ${running} ready; at most ${Math.max(0, running - 1)}`, {
          details: { field: 'minReady', minReady, ready: running },
        });
      }
      const input2 = { pool: name, spec: next, mode, minReady, graceSeconds: request.graceSeconds ?? 60 };
      const task = await run('pool-update', name, name, input2);
      await updatePool(deps.db, name, { task_id: task.taskId });
      return { ...task, pool: name };
    },
  };
}
