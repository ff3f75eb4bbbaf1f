import { GuestAgentClient, QmpClient } from '../qemu/index.js';
import type { Actor } from '../state/index.js';
import { deleteSetting, getSetting, getVm, putSetting, transition, type Db } from '../store/index.js';
import { hostNowNs } from '../util/index.js';
import { vmPathsIn, type VmDeps } from '../vm/index.js';

/** The settings key naming the child a `--from-vm` creation holds still (set before `stop`, gone after `cont`). */
function standstillKey(template: string): string {
  return `from-vm-standstill:${template}`;
}

export async function markStandstill(db: Db, template: string, vm: string): Promise<void> {
  await putSetting(db, standstillKey(template), vm);
}

export async function clearStandstill(db: Db, template: string): Promise<void> {
  await deleteSetting(db, standstillKey(template));
}

/**
 * The child's clock stood still with its CPUs: set it to the host's again (guest-set-time, as the script path's
 * identity does). A failure is the child's to report (`vmfork verify` checks clocks), not the template's.
 */
export async function resetClock(deps: VmDeps, name: string, agentSocket: string): Promise<void> {
  try {
    const qga = await GuestAgentClient.waitReady(agentSocket, { timeoutMs: 30_000 });
    try {
      await qga.setTime(hostNowNs(), { timeoutMs: 15_000 });
    } finally {
      qga.close();
    }
  } catch (err) {
    deps.log.warn({ vm: name, err }, 'the clock of the VM made into a template could not be set after its pause; vmfork verify reports its offset');
  }
}

/**
 * Heal of a `--from-vm` creation whose process died while its child stood still: the child (named by the
 * standstill key, never guessed) runs on — a migration cut short cancelled, its fork's capability restored, `cont`
 * if QEMU is stopped, its clock set — and is `running` again in the store. Returns what it did, or undefined.
 */
export async function resumeStrandedChild(deps: VmDeps, template: string, actor: Actor): Promise<string | undefined> {
  const name = await getSetting(deps.db, standstillKey(template));
  if (name === undefined) return undefined;
  const vm = await getVm(deps.db, name);
  if (vm?.state === 'paused') {
    const paths = vmPathsIn(vm.dir);
    const qmp = await QmpClient.connect(paths.qmp, { connectTimeoutMs: 10_000 });
    try {
      await qmp.execute('migrate_cancel').catch(() => undefined);
      await qmp.migrateSetCapabilities([{ capability: 'x-ignore-shared', state: true }]).catch(() => undefined);
      const { status } = await qmp.queryStatus();
      if (status !== 'running') await qmp.cont();
    } finally {
      qmp.close();
    }
    await transition(deps.db, 'vms', name, 'paused', 'running', actor);
    await resetClock(deps, name, paths.agent);
  }
  await clearStandstill(deps.db, template);
  return vm?.state === 'paused' ? `VM ${name}, held still for it, continued` : undefined;
}
