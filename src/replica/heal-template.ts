import { actorFor, ownerAlive } from '../host/index.js';
import { takeOver, type TemplateRow } from '../store/index.js';
import { dismantleTemplate, healTemplate } from '../template/index.js';
import type { VmDeps } from '../vm/index.js';

/**
 * A replica's template that will never become ready is cleared here instead of being waited for for ever: one
 * whose creator died is rolled back (taken over first, so one healer does it), a failed one removed.
 */
export async function healInterruptedTemplate(deps: VmDeps, row: TemplateRow): Promise<void> {
  if (row.state === 'ready') return;
  const actor = await actorFor('template-create');
  if (row.state === 'failed') {
    await dismantleTemplate(deps, row, actor);
    return;
  }
  if (await ownerAlive({ pid: row.owner_pid, startTime: row.owner_start_time, boot: row.owner_boot })) return;
  if (await takeOver(deps.db, 'templates', row.name, row.state, row, actor)) await healTemplate(deps, row, actor);
}
