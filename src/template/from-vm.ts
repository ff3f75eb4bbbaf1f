import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { VmforkAgentClient } from '../agent/index.js';
import { VmforkError, withContext } from '../errors.js';
import { actorFor, checkHostCapacity, localQemuBuild } from '../host/index.js';
import { attachVm } from '../network/index.js';
import { deviceLayoutHash, deviceLayoutOf, GuestAgentClient, layoutDifferences, QmpClient, terminateProcess, type LaunchedProcess } from '../qemu/index.js';
import { decodeVmSpec, parseVmSpec, type VmSpec } from '../spec/index.js';
import type { Actor } from '../state/index.js';
import { getTemplate, getVm, insertTemplate, insertVm, listLeases, requireTemplate, transition, updateTemplate, type VmRow } from '../store/index.js';
import { assertValidName } from '../util/index.js';
import { getVmReconciled, hereHost, readGuestIdentity, serialTail, startVmProcess, vmChannels, vmPaths, vmPathsIn, type VmDeps } from '../vm/index.js';
import { newTemplateId, prepareThroughAgent, type AgentForkRecord } from './agent-prepare.js';
import { sealTemplateFiles } from './create.js';
import { freezeParent } from './cut.js';
import { dismantleTemplate } from './dismantle.js';
import { templateFiles, type TemplateFiles } from './files.js';
import { clearStandstill, markStandstill, resetClock } from './from-vm-heal.js';
import { moveChildState } from './from-vm-move.js';
import { prepareTemplateGuest } from './prepare.js';
import { readyTemplate, type TemplateRecord } from './record.js';

export interface TemplateFromVmOptions {
  name: string;
  /** The running child whose exact state becomes the template's. */
  vm: string;
  /** @default 300_000 */
  agentTimeoutMs?: number;
}

/**
 * Makes a template of a running child (`template create NAME --from-vm CHILD`): the new template's children fork
 * from the child's state — its files, its processes, at the instruction it stood at. The child keeps running: its
 * state is MOVED into a new parent QEMU (from-vm-move.ts: disks copied, RAM and device state migrated into the
 * template's own RAM file, the child continued), and that parent — never the child — is brought to a freeze point
 * the way an image's parent is: with its NIC's link cut (it holds the child's MAC and address) it runs just long
 * enough to be prepared (vmfork-guest's PREPARE → FORK_ME, or the prepare script), then the cut and the seal.
 * The template's disks stay overlays on the child's template's disks: it records that template as its parent
 * (`parent_name`), which then cannot be removed before it. Rolled back whole on failure, as `createTemplate` is.
 */
export async function createTemplateFromVm(deps: VmDeps, options: TemplateFromVmOptions): Promise<TemplateRecord> {
  const { db, home, log } = deps;
  assertValidName(options.name, 'template');
  if (await getTemplate(db, options.name)) throw new VmforkError('VMFORK_TEMPLATE_EXISTS', `a template named "${options.name}" already exists`, { details: { template: options.name } });
  if (await getVm(db, options.name)) throw new VmforkError('VMFORK_VM_EXISTS', `a VM named "${options.name}" already exists; a template's parent takes its name`, { details: { vm: options.name } });
  const child = await sourceChild(deps, options.vm);
  const parentTemplate = readyTemplate(await requireTemplate(db, child.template_name ?? ''));
  const childSpec = decodeVmSpec(child.spec_json);
  const network = (await listLeases(db)).find((l) => l.vm_name === child.name)?.network_name;
  if (!network) throw new VmforkError('VMFORK_VM_STATE', `VM ${child.name} holds no address on any network`, { details: { vm: child.name } });
  const qemu = await localQemuBuild({ cacheFile: join(home.run, 'qemu-build.json') });
  const files = templateFiles(home.templates, options.name);
  const paths = { ...vmPaths(home.templates, options.name), disk: files.disk };
  // the child's RAM is written whole into the template's own file; its copied overlays are small
  await checkHostCapacity({ dir: home.root, diskBytes: childSpec.memoryMiB * 1024 ** 2 + 512 * 1024 ** 2, memoryMiB: childSpec.memoryMiB, count: 1 });
  const actor = await actorFor('template-create');
  const now = new Date().toISOString();
  const base = { name: options.name, image_name: parentTemplate.row.image_name, dir: files.dir, last_error: null, created_at: now, updated_at: now };
  // the parent link is in the first row: from now on the old template cannot be removed under this one
  await insertTemplate(db, { ...base, state: 'creating', spec_json: '{}', record_json: null, replica_id: null, parent_name: parentTemplate.row.name, host_id: hereHost(deps) }, actor);
  let launched: LaunchedProcess | undefined;
  let vfg: VmforkAgentClient | undefined;
  try {
    await mkdir(files.dir, { recursive: true });
    const lease = await attachVm(db, { network, vmName: options.name, host: hereHost(deps) });
    const spec = parentSpec(childSpec, options.name, files, paths, lease);
    await updateTemplate(db, options.name, { spec_json: JSON.stringify(spec) });
    await insertVm(db, { ...base, host_id: hereHost(deps), template_name: null, state: 'creating', role: 'template', spec_json: JSON.stringify(spec) }, actor);
    await transition(db, 'templates', options.name, 'creating', 'booting', actor);
    await transition(db, 'vms', options.name, 'creating', 'starting', actor);
    const moved = await moveFromChild(deps, child, spec, files, paths, lease.netns, actor);
    launched = moved.parent;
    await transition(db, 'vms', options.name, 'starting', 'running', actor);
    await transition(db, 'templates', options.name, 'booting', 'preparing', actor);
    const prepared = await prepareParent(paths.qmp, spec, options);
    vfg = prepared.client;
    const cut = await freezeParent(deps, options.name, { qmpPath: paths.qmp, statePath: files.state, proc: launched, network }, actor);
    vfg?.close();
    vfg = undefined;
    const record: TemplateRecord = {
      ...parentTemplate.record,
      qemuBuild: qemu.build,
      machine: qemu.machine,
      layout: deviceLayoutOf(spec),
      layoutHash: deviceLayoutHash(spec),
      files: await sealTemplateFiles(files, spec.disks),
      bootId: prepared.bootId,
      prepareMs: Math.round(prepared.prepareMs),
      cutMs: Math.round(cut.cutMs),
      frozenAt: new Date().toISOString(),
      forkPath: prepared.fork ? 'agent' : 'script',
      fromVm: { vm: child.name, template: parentTemplate.row.name, pausedMs: moved.pausedMs, steps: moved.steps },
    };
    delete record.agent;
    if (prepared.fork) record.agent = prepared.fork;
    await updateTemplate(db, options.name, { record_json: JSON.stringify(record) });
    await transition(db, 'templates', options.name, 'freezing', 'ready', actor);
    log.info({ template: options.name, vm: child.name, pausedMs: moved.pausedMs, cutMs: record.cutMs, forkPath: record.forkPath }, 'template frozen from a running child');
    return record;
  } catch (err) {
    vfg?.close();
    const tail = await serialTail(paths.serialLog);
    log.error({ template: options.name, vm: child.name, err, serialTail: tail }, 'template creation from a VM failed; rolling back');
    if (launched) await terminateProcess(launched.pid, launched.startTime, { graceMs: 1_000 }).catch(() => undefined);
    await dismantleTemplate(deps, await requireTemplate(db, options.name), actor).catch((e: unknown) => log.error({ template: options.name, err: e }, 'rollback failed; heal finishes it'));
    throw withContext(err, `template ${options.name} from VM ${child.name}`, { suffix: tail ? `\n--- serial log tail ---\n${tail}` : '', details: { template: options.name, vm: child.name } });
  }
}

/** The child a template can be made of: a forked child, running, of a template that is ready. */
async function sourceChild(deps: VmDeps, name: string): Promise<VmRow> {
  const vm = await getVmReconciled(deps, name);
  if (vm.role !== 'child' || !vm.template_name) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `VM ${name} is a ${vm.role === 'vm' ? 'cold-booted VM' : `${vm.role} VM`}, not a forked child: only a child's state can become a template`, {
      details: { vm: name, role: vm.role },
    });
  }
  if (vm.state !== 'running') {
    throw new VmforkError('VMFORK_VM_STATE', `VM ${name} is ${vm.state}; a template is made of a running child`, { details: { vm: name, state: vm.state, allowed: ['running'] } });
  }
  return vm;
}

/**
 * The new parent: the child's devices exactly (its device state is loaded into them), its own RAM file shared
 * (share=on: the template's RAM, written by the migration), the copied disks, its own tap, sockets and vmgenid.
 */
function parentSpec(child: VmSpec, name: string, files: TemplateFiles, paths: ReturnType<typeof vmPaths>, lease: { mac: string; tap: string }): VmSpec {
  const spec = parseVmSpec({
    name,
    accel: child.accel,
    ...(child.tbSizeMiB !== undefined ? { tbSizeMiB: child.tbSizeMiB } : {}),
    machine: child.machine,
    cpuModel: child.cpuModel,
    cpus: child.cpus,
    memoryMiB: child.memoryMiB,
    memory: { kind: 'file', path: files.ram, share: true },
    disks: child.disks.map((d) => ({ ...d, path: files.diskFor(d.id) })),
    nics: child.nics.map((n) => ({ id: n.id, mac: lease.mac, backend: { kind: 'tap' as const, ifname: lease.tap } })),
    ...vmChannels(paths, { vmforkAgent: child.vmforkAgentSocket !== undefined, screen: child.vga }),
    incoming: 'defer',
  });
  const diffs = layoutDifferences(child, spec);
  if (diffs.length) throw new VmforkError('VMFORK_TEMPLATE_MISMATCH', `template ${name} would not match VM ${child.name}: ${diffs.join('; ')}`, { details: { diffs } });
  return spec;
}

/** The child paused in the store while it stands still (a state `vm list` shows), running again once continued. */
async function moveFromChild(deps: VmDeps, child: VmRow, spec: VmSpec, files: TemplateFiles, paths: ReturnType<typeof vmPaths>, netns: string, actor: Actor): Promise<Awaited<ReturnType<typeof moveChildState>>> {
  const childPaths = vmPathsIn(child.dir);
  // named before it stands still: if this process dies now, heal continues exactly this child
  await markStandstill(deps.db, spec.name, child.name);
  await transition(deps.db, 'vms', child.name, 'running', 'paused', actor);
  try {
    return await moveChildState({
      childQmp: childPaths.qmp,
      disks: decodeVmSpec(child.spec_json).disks.map((d) => ({ id: d.id, from: d.path, to: files.diskFor(d.id) })),
      launchParent: async () => ({ qmp: paths.qmp, process: await startVmProcess(deps, spec.name, spec, paths, { netns }) }),
      streamSocket: join(files.dir, 'move.sock'),
    });
  } finally {
    await transition(deps.db, 'vms', child.name, 'paused', 'running', actor);
    await clearStandstill(deps.db, spec.name);
    await resetClock(deps, child.name, childPaths.agent);
  }
}

interface PreparedParent {
  client?: VmforkAgentClient;
  fork?: AgentForkRecord;
  bootId: string;
  prepareMs: number;
}

/**
 * Runs the parent just long enough to prepare it. Its NIC's link is down from before `cont` until the guest has
 * taken its interface down itself: the guest still holds the child's MAC and address, and not one frame of them
 * may reach the bridge the child is on. The link is up again for the cut (the device state records it, and every
 * child would inherit a cut cable).
 */
async function prepareParent(qmpPath: string, spec: VmSpec, options: TemplateFromVmOptions): Promise<PreparedParent> {
  const timeoutMs = options.agentTimeoutMs ?? 300_000;
  const qmp = await QmpClient.connect(qmpPath, { connectTimeoutMs: 10_000 });
  const setLinks = async (up: boolean): Promise<void> => {
    for (const n of spec.nics) await qmp.execute('set_link', { name: n.id, up });
  };
  try {
    if (!spec.agentSocket) throw new VmforkError('VMFORK_AGENT_UNAVAILABLE', `VM ${spec.name} has no guest agent channel`, { details: { vm: spec.name } });
    await setLinks(false);
    await qmp.cont();
    const qga = await GuestAgentClient.waitReady(spec.agentSocket, { timeoutMs });
    let bootId: string;
    try {
      bootId = (await readGuestIdentity(qga)).bootId;
      if (!spec.vmforkAgentSocket) {
        const t0 = performance.now();
        await prepareTemplateGuest(qga);
        await setLinks(true);
        return { bootId, prepareMs: performance.now() - t0 };
      }
    } finally {
      qga.close();
    }
    const prepared = await prepareThroughAgent(spec.vmforkAgentSocket, newTemplateId(options.name), { timeoutMs, fromChild: true });
    await setLinks(true).catch((err: unknown) => {
      prepared.client.close();
      throw err;
    });
    return { client: prepared.client, fork: prepared.fork, bootId, prepareMs: prepared.prepareMs };
  } finally {
    qmp.close();
  }
}
