import { VmforkError } from '../errors.js';
import { forkChildren, forkRegistered, refreshChild, resetDisks, warmRegistered, type ChildCustomizer, type ForkBatchOptions, type ForkBatchResult, type ForkedChild } from '../fork/index.js';
import { openSessions, watchSessions } from '../agent/index.js';
import { applyIdentity } from '../identity/index.js';
import { leaseOfVm } from '../network/index.js';
import { ensureReplica, ensureReplicaTemplate, removeReplicaAndTemplates, type ReplicaSpec, type StepReporter } from '../replica/index.js';
import type { ReplicaRow, VmRow } from '../store/index.js';
import { connectAgent, resumeVm, startVm, stopVm, suspendVm, vmPaths, type VmDeps } from '../vm/index.js';
import type { SessionSource } from './claim-watch.js';
import { destroyAnywhere } from './placed.js';

/** What the pool layer reads of a forked child: its name and how long it took. */
export type PoolForked = Pick<ForkedChild, 'name' | 'timings'>;

/** A fork batch as the pool layer asks for it: its progress callback sees only what the pool layer reads. */
export type PoolForkOptions = Omit<ForkBatchOptions, 'onChild'> & { onChild?: (done: PoolForked | { name: string; error: VmforkError }) => void };

/**
 * Everything the pool layer asks of the replica map, the fork engine and a VM's life: the QEMU work, and nothing
 * else (the store and the task engine are used directly). The real parts are the default; tests hand in scripted
 * ones (test/pool/scripted-parts.ts) to drive converge, power, queueing and cancel without a VM.
 */
export interface PoolParts {
  ensureReplica(deps: VmDeps, spec: ReplicaSpec, report: StepReporter): Promise<{ replica: ReplicaRow; reused: boolean }>;
  ensureReplicaTemplate(deps: VmDeps, replica: ReplicaRow, spec: ReplicaSpec, report: StepReporter): Promise<{ row: { name: string } }>;
  forkChildren(deps: VmDeps, options: PoolForkOptions): Promise<Pick<ForkBatchResult, 'registered' | 'skipped'>>;
  /** Forks a pre-registered child; of two racing for one child, the loser gets VMFORK_VM_STATE having touched nothing. */
  forkRegistered(deps: VmDeps, name: string, options: { customize?: ChildCustomizer; signal?: AbortSignal }): Promise<PoolForked>;
  destroyVm(deps: VmDeps, name: string): Promise<unknown>;
  /** Boots a powered-off VM from its own disks; a child gets its addresses again, as at fork. */
  bootStopped(deps: VmDeps, vm: VmRow): Promise<void>;
  stopVm(deps: VmDeps, name: string): Promise<VmRow>;
  /** Suspends a running child to its own state file (a persistent child's power-off). */
  suspendVm(deps: VmDeps, name: string): Promise<unknown>;
  /** Resumes a suspended child (no boot); `resumed: false` with why when it has no usable state. */
  resumeVm(deps: VmDeps, name: string): Promise<{ resumed: true } | { resumed: false; reason: string }>;
  /** Launches a registered child's QEMU at -incoming defer (`registered` → `warm`): a claim then only resumes it. */
  warmRegistered(deps: VmDeps, name: string): Promise<void>;
  /** Forks a given-back child again from `template`: same name, MAC and address, nothing of its last user. */
  refreshChild(deps: VmDeps, name: string, template: string, options: { customize?: ChildCustomizer; signal?: AbortSignal }): Promise<PoolForked>;
  /** Makes the overlays `ids` of a stopped child anew over the template's disks. */
  resetDisks(deps: VmDeps, name: string, template: string, ids: readonly string[]): Promise<string[]>;
  /** Watches a running child's login sessions (vmfork-guest's WATCH); absent: logoff is never seen. */
  watchSessions?: SessionSource;
  /** Tells a running child's users something (`wall`, through the guest agent). */
  notifyGuest(deps: VmDeps, name: string, message: string): Promise<void>;
  /** Removes a replica no pool uses, with its templates and files (refused while a child stands on them). */
  removeReplica(deps: VmDeps, id: string): Promise<unknown>;
}

export const REAL_PARTS: PoolParts = {
  ensureReplica,
  ensureReplicaTemplate,
  forkChildren,
  forkRegistered,
  // a placed pool's child on another host is destroyed by that host's agent
  destroyVm: (deps, name) => destroyAnywhere(deps, name),
  bootStopped: async (deps, vm) => {
    await startVm(deps, vm.name, { allowChild: true });
    if (vm.role === 'child') await restoreAddresses(deps, vm);
  },
  stopVm,
  refreshChild,
  resetDisks,
  warmRegistered,
  suspendVm,
  resumeVm,
  notifyGuest: async (deps, name, message) => {
    const agent = await connectAgent(deps, name);
    try {
      await agent.exec('/usr/bin/wall', [message], { timeoutMs: 10_000 });
    } finally {
      agent.close();
    }
  },
  removeReplica: removeReplicaAndTemplates,
  watchSessions: async (deps, vm, onSessions, onEnd) => {
    const w = await watchSessions(vmPaths(deps.home.vms, vm.name).guest, (list) => onSessions(openSessions(list).map((s) => s.user)), { logger: deps.log });
    void w.ended.then((err) => onEnd(err));
    return { close: () => w.close() };
  },
};

/** A child booted from its disks kept its name, machine id and keys; its addresses are set again, same as at fork. */
async function restoreAddresses(deps: VmDeps, vm: VmRow): Promise<void> {
  const facts = vm.facts_json ? (JSON.parse(vm.facts_json) as { machineId?: string }) : {};
  const lease = await leaseOfVm(deps.db, vm.name);
  if (!lease || !facts.machineId) throw new VmforkError('VMFORK_VM_STATE', `child ${vm.name} lost its lease or identity record`, { details: { vm: vm.name } });
  const agent = await connectAgent(deps, vm.name);
  try {
    await applyIdentity(agent, { hostname: vm.name, mac: lease.mac, machineId: facts.machineId, ipv4: { address: lease.ip, prefix: lease.prefix, gateway: lease.gateway } });
  } finally {
    agent.close();
  }
}
