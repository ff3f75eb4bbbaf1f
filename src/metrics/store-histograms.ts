import { z } from 'zod';
import { replicasReadySince, tasksEndedSince, vmsForkedSince, type Db } from '../store/index.js';
import type { VmforkMetrics } from './definitions.js';
import { EndedSince } from './ended-since.js';
import { storedJson } from './stored-json.js';

/** A replica's phase1_json (replica/map.ts Phase1Record; a copy pulled from another host adds `copiedFrom`). */
const Phase1 = z.looseObject({
  ms: z.looseObject({ total: z.number().min(0).optional() }).optional(),
  copyMs: z.number().min(0).optional(),
  copiedFrom: z.unknown().optional(),
});

/** The histograms fed from the store's rows: tasks that ended, children forked and replicas made, each observed once by this process. */
export class StoreHistograms {
  private readonly tasks: EndedSince;
  private readonly replicas: EndedSince;
  private readonly forks: EndedSince;

  constructor(
    private readonly db: Db,
    private readonly m: VmforkMetrics,
    startMs: number = Date.now(),
  ) {
    this.tasks = new EndedSince(startMs);
    this.replicas = new EndedSince(startMs);
    this.forks = new EndedSince(startMs);
  }

  async collect(): Promise<void> {
    await this.observeTasks();
    await this.observeReplicas();
    await this.observeForks();
  }

  private async observeTasks(): Promise<void> {
    const now = Date.now();
    const rows = await tasksEndedSince(this.db, this.tasks.since());
    for (const t of this.tasks.fresh(rows, (r) => r.id, (r) => r.updated_at, now)) {
      const seconds = (Date.parse(t.updated_at) - Date.parse(t.created_at)) / 1000;
      if (seconds >= 0) this.m.taskDuration.observe({ kind: t.kind, state: t.state }, seconds);
    }
  }

  /** Each fork that made a child ready, whatever ran it: a refresh forks the same VM again, at a new `forked_at`. */
  private async observeForks(): Promise<void> {
    const now = Date.now();
    const rows = await vmsForkedSince(this.db, this.forks.since());
    for (const v of this.forks.fresh(rows, (r) => `${r.name}@${r.forked_at}`, (r) => r.forked_at, now)) {
      this.m.forkReady.observe({ pool: v.pool_name ?? '' }, v.ready_ms / 1000);
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
