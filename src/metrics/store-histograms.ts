import { z } from 'zod';
import { replicasReadySince, tasksEndedSince, type Db } from '../store/index.js';
import type { VmforkMetrics } from './definitions.js';
import { EndedSince } from './ended-since.js';
import { storedJson } from './stored-json.js';

/** A converge's result (pool/converge-result.ts): ms from each forked child's fork start to ready. */
const ForkResult = z.looseObject({ readyMs: z.record(z.string(), z.number().min(0)) });

/** A replica's phase1_json (replica/map.ts Phase1Record; a copy pulled from another host adds `copiedFrom`). */
const Phase1 = z.looseObject({
  ms: z.looseObject({ total: z.number().min(0).optional() }).optional(),
  copyMs: z.number().min(0).optional(),
  copiedFrom: z.unknown().optional(),
});

/** The histograms fed from the store's rows: tasks that ended and replicas made, each observed once by this process. */
export class StoreHistograms {
  private readonly tasks: EndedSince;
  private readonly replicas: EndedSince;

  constructor(
    private readonly db: Db,
    private readonly m: VmforkMetrics,
    startMs: number = Date.now(),
  ) {
    this.tasks = new EndedSince(startMs);
    this.replicas = new EndedSince(startMs);
  }

  async collect(): Promise<void> {
    await this.observeTasks();
    await this.observeReplicas();
  }

  private async observeTasks(): Promise<void> {
    const now = Date.now();
    const rows = await tasksEndedSince(this.db, this.tasks.since());
    for (const t of this.tasks.fresh(rows, (r) => r.id, (r) => r.updated_at, now)) {
      const seconds = (Date.parse(t.updated_at) - Date.parse(t.created_at)) / 1000;
      if (seconds >= 0) this.m.taskDuration.observe({ kind: t.kind, state: t.state }, seconds);
      // a pool task that forked children (create, converge, resize, update) says how long each took to be ready
      const result = t.state === 'succeeded' ? storedJson(ForkResult, t.result_json) : undefined;
      for (const ms of Object.values(result?.readyMs ?? {})) this.m.forkReady.observe({ pool: t.target }, ms / 1000);
    }
  }

  private async observeReplicas(): Promise<void> {
    const now = Date.now();
    const rows = await replicasReadySince(this.db, this.replicas.since());
    for (const r of this.replicas.fresh(rows, (x) => x.id, (x) => x.updated_at, now)) {
      const p = storedJson(Phase1, r.phase1_json);
      if (!p) continue;
      // a copy pulled from another host carries its source's phase 1: it ran there, not here
      if (p.copiedFrom === undefined && p.ms?.total !== undefined) this.m.phase1.observe({ host: r.host_id }, p.ms.total / 1000);
      if (p.copyMs !== undefined) this.m.replicaCopy.observe({ host: r.host_id }, p.copyMs / 1000);
    }
  }
}
