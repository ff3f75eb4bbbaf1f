import { isVmforkError, VmforkError } from '../errors.js';
import { getTemplate, setTemplateReplica, type ReplicaRow } from '../store/index.js';
import { createTemplate, readyTemplate, type ReadyTemplate } from '../template/index.js';
import { waitUntil } from '../util/index.js';
import type { VmDeps } from '../vm/index.js';
import { healInterruptedTemplate } from './heal-template.js';
import { replicaDisks, type StepReporter } from './map.js';
import { childShape, replicaTemplateName, type ReplicaSpec } from './spec.js';

/** How long a task waits for a template another task is freezing (one cold boot and a cut: minutes under TCG). */
const TEMPLATE_WAIT_MS = 30 * 60_000;

/**
 * The replica's template in the pool's shape ("forked state"): booted once from overlays on the replica's disks,
 * prepared and frozen, and linked to its replica by the templates table's `replica_id`. Reused when ready, waited
 * for while another task freezes it.
 */
export async function ensureReplicaTemplate(deps: VmDeps, replica: ReplicaRow, spec: ReplicaSpec, report: StepReporter): Promise<ReadyTemplate> {
  const name = replicaTemplateName(replica.id, spec);
  const { memoryMiB, cpus } = childShape(spec);
  const attempt = async (): Promise<ReadyTemplate | undefined> => {
    const row = await getTemplate(deps.db, name);
    if (row?.state === 'ready') {
      // a template made before the link existed (or by a process that died right after the cut) is linked now
      if (row.replica_id !== replica.id) await setTemplateReplica(deps.db, name, replica.id);
      const ready = readyTemplate(row);
      // the name says it; the device decides: a child must have a screen exactly when the pool asks for one
      if ((ready.spec.vga !== undefined) !== (spec.screen === true)) {
        throw new VmforkError('VMFORK_TEMPLATE_MISMATCH', `template ${name} ${spec.screen === true ? 'has no' : 'has a'} VGA device, the pool's children ${spec.screen === true ? 'need one' : 'must not'}`, {
          details: { template: name, screen: spec.screen === true },
        });
      }
      return ready;
    }
    if (row) {
      // another task is freezing it, or its creator died (then it is rolled back and made again here)
      await healInterruptedTemplate(deps, row);
      return undefined;
    }
    report.signal?.throwIfAborted();
    try {
      await report.event('template', `freezing replica ${replica.id} into template ${name} (${memoryMiB} MiB, ${cpus} vCPU${spec.screen === true ? ', a screen' : ''})`);
      const record = await createTemplate(deps, {
        name,
        image: spec.image,
        memory: `${memoryMiB}M`,
        cpus,
        network: spec.network,
        replicaId: replica.id,
        ...(spec.screen === true ? { screen: true } : {}),
        sourceDisks: replicaDisks(replica).map((d) => ({ id: d.id, path: d.path, format: 'qcow2' as const })),
        signal: report.signal,
      });
      await report.event('template', `template ${name} ready: boot ${record.coldBootSeconds.toFixed(1)} s, cut ${record.cutMs} ms`, { template: name });
    } catch (err) {
      if (!(isVmforkError(err) && err.code === 'VMFORK_TEMPLATE_EXISTS')) throw err;
    }
    return undefined;
  };
  return waitUntil(attempt, { deadlineMs: TEMPLATE_WAIT_MS, everyMs: 1_000, what: `template ${name}`, ...(report.signal ? { signal: report.signal } : {}) });
}
