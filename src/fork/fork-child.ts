import { mkdir, readFile, rm } from 'node:fs/promises';
import { VmforkError, toVmforkError } from '../errors.js';
import { attachVm, detachVm } from '../network/attach.js';
import type { Lease } from '../network/leases.js';
import { layoutDifferences } from '../qemu/qemu-argv.js';
import { createOverlay } from '../qemu/qemu-img.js';
import { GuestAgentClient } from '../qemu/guest-agent-client.js';
import { QmpClient } from '../qemu/qmp-client.js';
import { terminateProcess, type LaunchedProcess } from '../qemu/qemu-process.js';
import { LOCAL_HOST_ID } from '../store/db.js';
import { markProcessExited } from '../store/processes-repo.js';
import { deleteVm, insertVm, updateVm } from '../store/vms-repo.js';
import type { VmDeps } from '../vm/vm-deps.js';
import { vmChannels, vmPaths, type VmPaths } from '../vm/vm-paths.js';
import { shQuote } from '../identity/shell.js';
import { startVmProcess } from '../vm/vm-process.js';
import type { VmSpec, VmSpecInput } from '../vm/vm-spec.js';
import { giveIdentity, type ChildIdentityResult } from './child-identity.js';
import type { ReadyTemplate } from './template-record.js';

/** Milliseconds from the start of this child's fork. */
export interface ForkTimings {
  /** QEMU started and greeting on QMP. */
  qmpMs: number;
  /** Device state loaded (status `paused`). */
  loadedMs: number;
  /** `cont` done: the guest runs again at the template's instruction. */
  runningMs: number;
  /** Guest agent answers. */
  agentMs: number;
  /** Identity applied and verified: the child is ready for use. */
  readyMs: number;
}

export interface ForkedChild {
  name: string;
  ip: string;
  mac: string;
  tap: string;
  netns: string;
  pid: number;
  timings: ForkTimings;
  identity: ChildIdentityResult;
}

/** A child's spec: the template's devices, with its own overlay, MAC, tap, vmgenid, uuid, sockets; RAM MAP_PRIVATE. */
export function childSpec(t: ReadyTemplate, name: string, paths: VmPaths, lease: Pick<Lease, 'mac' | 'tap'>): VmSpecInput {
  const base: VmSpec = t.spec;
  const spec: VmSpecInput = {
    name,
    accel: base.accel,
    ...(base.tbSizeMiB !== undefined ? { tbSizeMiB: base.tbSizeMiB } : {}),
    machine: base.machine,
    cpuModel: base.cpuModel,
    cpus: base.cpus,
    memoryMiB: base.memoryMiB,
    // share=off: MAP_PRIVATE over the template's RAM file — pages are shared until the child writes them
    memory: { kind: 'file', path: t.record.files.ram.path, share: false },
    // no -kernel: the guest is already running; 8 MiB less per child (a reboot would need a bootloader on disk)
    disks: base.disks.map((d) => ({ ...d, path: paths.disk })),
    nics: base.nics.map((n) => ({ id: n.id, mac: lease.mac, backend: { kind: 'tap' as const, ifname: lease.tap } })),
    // a new vmgenid guid makes the guest kernel reseed its CRNG on resume
    ...vmChannels(paths),
    incoming: 'defer',
  };
  const diffs = layoutDifferences(t.spec, spec);
  if (diffs.length) {
    throw new VmforkError('VMFORK_TEMPLATE_MISMATCH', `child ${name} would not match template ${t.row.name}: ${diffs.join('; ')}`, { details: { diffs } });
  }
  return spec;
}

/** Resumes the template's frozen device state in a started `-incoming defer` QEMU. */
async function resume(qmpPath: string, statePath: string, mark: (k: 'loadedMs' | 'runningMs') => void): Promise<void> {
  const qmp = await QmpClient.connect(qmpPath, { connectTimeoutMs: 10_000 });
  try {
    await qmp.migrateSetCapabilities([{ capability: 'x-ignore-shared', state: true }]);
    await qmp.migrateIncoming(`exec:cat ${shQuote(statePath)}`);
    await qmp.waitForStatus('paused', { timeoutMs: 60_000, pollMs: 2 });
    mark('loadedMs');
    await qmp.cont();
    mark('runningMs');
  } finally {
    qmp.close();
  }
}

/**
 * Forks one child: record → lease + tap → overlay → QEMU (-incoming defer) in the network's namespace →
 * migrate-incoming of the template state → cont → agent → identity. Any failure rolls back this child only
 * (process, overlay, tap, address, record) and reports QEMU's stderr tail.
 */
export async function forkChild(deps: VmDeps, t: ReadyTemplate, name: string, network: string): Promise<ForkedChild> {
  const { db, home } = deps;
  const t0 = performance.now();
  const ms = (): number => Math.round((performance.now() - t0) * 10) / 10;
  const timings: Partial<ForkTimings> = {};
  const paths = vmPaths(home.vms, name);
  const now = new Date().toISOString();
  await insertVm(db, {
    name,
    host_id: LOCAL_HOST_ID,
    image_name: t.record.image,
    template_name: t.row.name,
    state: 'creating',
    role: 'child',
    dir: paths.dir,
    spec_json: '{}',
    last_error: null,
    created_at: now,
    updated_at: now,
  });
  let lease: Lease | undefined;
  let launched: LaunchedProcess | undefined;
  let agent: GuestAgentClient | undefined;
  try {
    lease = await attachVm(db, { network, vmName: name });
    await mkdir(paths.dir, { recursive: true });
    await createOverlay(t.record.files.disk.path, paths.disk, { backingFormat: 'qcow2' });
    const spec = childSpec(t, name, paths, lease);
    await updateVm(db, name, { state: 'forking', spec_json: JSON.stringify(spec) });
    launched = await startVmProcess(deps, name, spec, paths, { netns: lease.netns });
    timings.qmpMs = ms();
    await resume(paths.qmp, t.record.files.state.path, (k) => (timings[k] = ms()));
    agent = await GuestAgentClient.connect(paths.agent, { timeoutMs: 5_000 });
    await agent.ping({ timeoutMs: 30_000 });
    timings.agentMs = ms();
    const identity = await giveIdentity(agent, { hostname: name, mac: lease.mac, ipv4: { address: lease.ip, prefix: lease.prefix, gateway: lease.gateway } });
    timings.readyMs = ms();
    await updateVm(db, name, { state: 'running' });
    return { name, ip: lease.ip, mac: lease.mac, tap: lease.tap, netns: lease.netns, pid: launched.pid, timings: timings as ForkTimings, identity };
  } catch (err) {
    agent?.close();
    const stderrTail = (await readFile(paths.stderrLog, 'utf8').catch(() => '')).trim().split('\n').slice(-8).join('\n');
    deps.log.error({ child: name, err, stderrTail }, 'fork failed; rolling back the child');
    if (launched) {
      await terminateProcess(launched.pid, launched.startTime, { graceMs: 500 }).catch(() => undefined);
      await markProcessExited(db, name);
    }
    if (lease) await detachVm(db, network, name).catch(() => undefined);
    await rm(paths.dir, { recursive: true, force: true });
    await deleteVm(db, name);
    const e = toVmforkError(err, 'VMFORK_FORK_FAILED');
    throw new VmforkError(e.code === 'VMFORK_INTERNAL' ? 'VMFORK_FORK_FAILED' : e.code, `child ${name}: ${e.message}${stderrTail ? `\n--- QEMU stderr ---\n${stderrTail}` : ''}`, {
      cause: err,
      details: { ...e.details, child: name, stderrTail },
    });
  } finally {
    agent?.close();
  }
}
