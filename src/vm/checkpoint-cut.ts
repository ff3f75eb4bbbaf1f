import { GuestAgentClient, QmpClient, saveState } from '../qemu/index.js';
import type { Logger } from '../util/index.js';

export interface CutPlan {
  qmpPath: string;
  agentPath: string;
  /** Per writable disk: its device id and the new overlay that becomes its active layer at the cut. */
  snapshots: { id: string; active: string }[];
  /** Where the device + RAM state goes; none for a disk-only checkpoint. */
  statePath?: string;
  /** Called once the snapshot transaction succeeded, before the state is saved (the record names the new layers). */
  onSnapshot?: () => Promise<void>;
  report?: (step: string, percent: number) => Promise<void>;
  log: Logger;
}

export interface CutTimes {
  /** From `stop` to `cont`: how long the guest's CPUs stood still. */
  pausedMs: number;
  /** From the freeze to the thaw: how long the guest's file systems refused writes. */
  frozenMs: number;
}

/** Make the migration to a file go as fast as the disk takes it: QEMU's default cap is meant for a network link. */
const UNCAPPED_BYTES_PER_SECOND = 64 * 1024 ** 3;

/**
 * The cut of a checkpoint: fsfreeze → `stop` → one `transaction` of `blockdev-snapshot-sync` (every writable disk's
 * active layer frozen, new overlays active) → with memory, `migrate` to the state file (the RAM in the stream: no
 * x-ignore-shared) until `completed` → `cont` → thaw. The order is the invariant: snapshot and save both happen
 * with the CPUs stopped, so the frozen disks and the saved RAM describe the same instant, and the snapshot precedes
 * the save (a completed migration inactivates the disks). Whatever fails, the guest is resumed and thawed before
 * the error goes up.
 */
export async function cutCheckpoint(plan: CutPlan): Promise<CutTimes> {
  const report = plan.report ?? (async () => undefined);
  const qmp = await QmpClient.connect(plan.qmpPath, { connectTimeoutMs: 10_000 });
  let agent: GuestAgentClient | undefined;
  let stopped = false;
  let frozenAt: number | undefined;
  try {
    await report('freeze', 10);
    agent = await GuestAgentClient.connect(plan.agentPath, { timeoutMs: 5_000 });
    frozenAt = performance.now();
    await agent.fsfreezeFreeze({ timeoutMs: 120_000 });
    await report('cut', 30);
    const stoppedAt = performance.now();
    await qmp.stop();
    stopped = true;
    await qmp.execute('transaction', {
      actions: plan.snapshots.map((d) => ({ type: 'blockdev-snapshot-sync', data: { device: d.id, 'snapshot-file': d.active, format: 'qcow2', mode: 'absolute-paths' } })),
    });
    await plan.onSnapshot?.();
    if (plan.statePath) {
      await report('save state', 50);
      await qmp.migrateSetCapabilities([{ capability: 'x-ignore-shared', state: false }]);
      await qmp.execute('migrate-set-parameters', { 'max-bandwidth': UNCAPPED_BYTES_PER_SECOND });
      await saveState(qmp, plan.qmpPath, { file: plan.statePath }, { timeoutMs: 600_000, pollMs: 20 });
    }
    await qmp.cont();
    stopped = false;
    const pausedMs = performance.now() - stoppedAt;
    await agent.fsfreezeThaw({ timeoutMs: 60_000 });
    const frozenMs = performance.now() - frozenAt;
    frozenAt = undefined;
    return { pausedMs: round(pausedMs), frozenMs: round(frozenMs) };
  } finally {
    // whatever failed, the guest runs on and can write again
    if (stopped) await qmp.cont().catch((err: unknown) => plan.log.error({ err }, 'checkpoint: cont after a failure failed'));
    if (frozenAt !== undefined) await agent?.fsfreezeThaw({ timeoutMs: 60_000 }).catch((err: unknown) => plan.log.error({ err }, 'checkpoint: thaw after a failure failed'));
    agent?.close();
    qmp.close();
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
