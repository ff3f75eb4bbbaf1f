import { setTimeout as sleep } from 'node:timers/promises';
import { isVmforkError } from '../errors.js';
import { healInterruptedTemplate } from './pool-heal-hooks.js';
import { createTemplate, readyTemplate, type ReadyTemplate } from '../template/index.js';
import { getTemplate, type ReplicaRow } from '../store/index.js';
import { parseMemoryMiB } from '../util/index.js';
import type { VmDeps } from '../vm/index.js';
import type { PoolSpec } from './pool-spec.js';
import { replicaDisks, type StepReporter } from './replicas.js';

/** Memory and CPUs of a pool's children: the spec's, or the template defaults (512 MiB, 1 vCPU). */
export function poolShape(spec: PoolSpec): { memoryMiB: number; cpus: number } {
  return { memoryMiB: parseMemoryMiB(spec.memory ?? '512M'), cpus: spec.cpus ?? 1 };
}

/** The template made from a replica for one memory size and CPU count: every pool of that shape shares it. */
export function replicaTemplateName(replicaId: string, spec: PoolSpec): string {
  const { memoryMiB, cpus } = poolShape(spec);
  return `rt-${replicaId}-${memoryMiB}m${cpus}c`;
}

/**
 * The replica's template in the pool's shape ("forked state"): booted once from overlays on the replica's disks,
 * prepared and frozen. Reused when ready, waited for while another task freezes it.
 */
export async function ensureReplicaTemplate(deps: VmDeps, replica: ReplicaRow, spec: PoolSpec, report: StepReporter): Promise<ReadyTemplate> {
  const name = replicaTemplateName(replica.id, spec);
  const { memoryMiB, cpus } = poolShape(spec);
  for (;;) {
    const row = await getTemplate(deps.db, name);
    if (row?.state === 'ready') return readyTemplate(row);
    if (row) {
      // another task is freezing it, or its creator died (then it is rolled back and made again here)
      await healInterruptedTemplate(deps, row);
      await sleep(1_000);
      continue;
    }
    try {
      await report.event('template', `freezing replica ${replica.id} into template ${name} (${memoryMiB} MiB, ${cpus} vCPU)`);
      const record = await createTemplate(deps, {
        name,
        image: spec.image,
        memory: `${memoryMiB}M`,
        cpus,
        network: spec.network,
        sourceDisks: replicaDisks(replica).map((d) => ({ id: d.id, path: d.path, format: 'qcow2' as const })),
      });
      await report.event('template', `template ${name} ready: boot ${record.coldBootSeconds.toFixed(1)} s, cut ${record.cutMs} ms`, { template: name });
    } catch (err) {
      if (!(isVmforkError(err) && err.code === 'VMFORK_TEMPLATE_EXISTS')) throw err;
    }
  }
}
