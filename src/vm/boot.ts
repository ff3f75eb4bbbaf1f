import { availableParallelism } from 'node:os';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { VmforkError, withContext } from '../errors.js';
import { actorFor, checkHostCapacity, detectAccel, readHostFacts, type AccelChoice, type AccelDecision } from '../host/index.js';
import { createImage, createOverlay, GuestAgentClient, type LaunchedProcess } from '../qemu/index.js';
import { randomLocalMac } from '../network/index.js';
import { parseVmSpec, type VmSpec } from '../spec/index.js';
import { insertVm, transition } from '../store/index.js';
import { assertValidName, parseMemoryMiB } from '../util/index.js';
import { readGuestIdentity } from './guest-facts.js';
import { imageBootSource, type BootSource } from './image-boot.js';
import { serialTail } from './serial-log.js';
import { hereHost, type VmDeps } from './vm-deps.js';
import { diskFile, vmChannels, vmPaths } from './vm-paths.js';
import { startVmProcess } from './vm-process.js';
import { rollbackVm } from './vm-record.js';

export interface BootOptions {
  image: string;
  /** @default `vm-<6 hex>` */
  name?: string;
  /** @default '512M' */
  memory?: string;
  /** @default 1 */
  cpus?: number;
  /** @default 'auto' */
  accel?: AccelChoice;
  /** How long to wait for the guest agent. @default 300_000 (a TCG boot takes ~20 s; a loaded host much longer) */
  agentTimeoutMs?: number;
  /** Empty data disks, created in the VM's directory; the guest finds each as /dev/disk/by-id/virtio-<id>. */
  dataDisks?: readonly { id: string; sizeBytes: number }[];
  /** @default 'vm' ('clone': a pool's internal clone, customized in phase 1; it stays `starting` until powered off) */
  role?: 'vm' | 'clone';
  /** QEMU stays up (paused) when the guest powers off, so the guest can be started again in place. */
  noShutdown?: boolean;
  /** A VGA screen served over VNC on the VM's screen socket (docs/console.md). @default false */
  screen?: boolean;
  /** A cancelled task: the boot stops waiting for the agent at once and the VM is rolled back as after a failure. */
  signal?: AbortSignal;
}

export interface BootResult {
  name: string;
  image: string;
  bootId: string;
  hostname: string;
  secondsToAgent: number;
  accel: AccelDecision['accel'];
  accelReason: string;
  memoryMiB: number;
  cpus: number;
  pid: number;
}

interface BootPlan {
  name: string;
  accel: AccelDecision;
  spec: VmSpec;
  source: BootSource;
}

/**
 * Guest CPUs a VM may be given (flags are checked with the same bounds everywhere): at most this host's CPUs, as
 * a pool spec's `cpus` (more vCPUs than cores only time-slice them, and TCG runs one thread per vCPU).
 */
export function checkCpus(cpus: number | undefined, hostCpus: number = availableParallelism()): number {
  const n = cpus ?? 1;
  const max = Math.min(64, hostCpus);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `--cpus: a whole number from 1 to ${max}${max === hostCpus ? ' (this host\'s CPUs)' : ''}, got ${String(cpus)}`, { details: { cpus, max } });
  }
  return n;
}

/**
 * Cold-boots a VM from a linked clone of an image and waits for its guest agent: the baseline every fork
 * benchmark compares against. Validates everything first; on any failure removes what it created (process,
 * overlay, record) and reports the serial log tail.
 */
export async function bootVm(deps: VmDeps, options: BootOptions): Promise<BootResult> {
  const plan = await planBoot(deps, options);
  const { db, home } = deps;
  const paths = vmPaths(home.vms, plan.name);
  const actor = await actorFor('boot');
  const now = new Date().toISOString();
  await insertVm(
    db,
    { name: plan.name, host_id: hereHost(deps), image_name: options.image, template_name: null, state: 'creating', role: options.role ?? 'vm', dir: paths.dir, spec_json: JSON.stringify(plan.spec), last_error: null, created_at: now, updated_at: now },
    actor,
  );
  let launched: LaunchedProcess | undefined;
  let agent: GuestAgentClient | undefined;
  try {
    await mkdir(paths.dir, { recursive: true });
    await createOverlay(plan.source.image.disk, paths.disk, { backingFormat: plan.source.diskFormat });
    for (const d of options.dataDisks ?? []) await createImage(diskFile(paths.dir, d.id), { format: 'qcow2', sizeBytes: d.sizeBytes });
    await transition(db, 'vms', plan.name, 'creating', 'starting', actor);
    const t0 = performance.now();
    options.signal?.throwIfAborted();
    launched = await startVmProcess(deps, plan.name, plan.spec, paths);
    agent = await GuestAgentClient.waitReady(paths.agent, { timeoutMs: options.agentTimeoutMs ?? 300_000, signal: options.signal });
    const secondsToAgent = (performance.now() - t0) / 1000;
    const identity = await readGuestIdentity(agent);
    // an internal clone stays `starting` (owned by this process) until phase 1 has customized and powered it off:
    // if this process dies meanwhile, heal rolls the half-customized clone back
    if ((options.role ?? 'vm') === 'vm') await transition(db, 'vms', plan.name, 'starting', 'running', actor);
    return {
      name: plan.name,
      image: options.image,
      bootId: identity.bootId,
      hostname: identity.hostname,
      secondsToAgent: Math.round(secondsToAgent * 1000) / 1000,
      accel: plan.accel.accel,
      accelReason: plan.accel.reason,
      memoryMiB: plan.spec.memoryMiB,
      cpus: plan.spec.cpus,
      pid: launched.pid,
    };
  } catch (err) {
    agent?.close();
    agent = undefined;
    const cancelled = options.signal?.aborted === true;
    // a cancel is no failure to diagnose: its error carries no serial log tail
    const tail = cancelled ? '' : await serialTail(paths.serialLog);
    if (cancelled) deps.log.info({ vm: plan.name }, 'boot cancelled; rolling back');
    else deps.log.error({ vm: plan.name, err, serialTail: tail }, 'boot failed; rolling back');
    const leftAlone = await rollbackVm(deps, plan.name, actor, err, launched);
    throw withContext(cancelled ? options.signal?.reason : err, `VM ${plan.name}`, {
      fallback: 'VMFORK_VM_START_FAILED',
      suffix: `${leftAlone ? `\n${leftAlone}` : ''}${tail ? `\n--- serial log tail (${plan.name}) ---\n${tail}` : ''}`,
      details: { vm: plan.name, serialTail: tail },
    });
  } finally {
    agent?.close();
  }
}

/** Every check that can fail before anything is written; the spec is parsed here, once. */
async function planBoot(deps: VmDeps, options: BootOptions): Promise<BootPlan> {
  const name = options.name ?? `vm-${randomBytes(3).toString('hex')}`;
  assertValidName(name, 'VM');
  const memoryMiB = parseMemoryMiB(options.memory ?? '512M');
  const cpus = checkCpus(options.cpus);
  const source = await imageBootSource(deps.db, options.image, { screen: options.screen === true });
  const accel = detectAccel(await readHostFacts(), options.accel ?? 'auto');
  const paths = vmPaths(deps.home.vms, name);
  const dataBytes = (options.dataDisks ?? []).reduce((sum, d) => sum + d.sizeBytes, 0);
  await checkHostCapacity({ dir: deps.home.root, diskBytes: 256 * 1024 ** 2 + dataBytes, memoryMiB, count: 1 });
  const spec = parseVmSpec({
    name,
    accel: accel.accel,
    cpus,
    memoryMiB,
    ...source.kernel,
    disks: [{ id: 'disk0', path: paths.disk, format: 'qcow2' }, ...(options.dataDisks ?? []).map((d) => ({ id: d.id, path: diskFile(paths.dir, d.id), format: 'qcow2' as const, serial: d.id }))],
    // user-mode networking with restrict=on: the NIC exists (same layout as forked VMs) but reaches nothing
    nics: [{ id: 'net0', mac: randomLocalMac(), backend: { kind: 'user' } }],
    ...vmChannels(paths, { screen: options.screen === true }),
    ...(options.noShutdown ? { noShutdown: true } : {}),
  });
  return { name, accel, spec, source };
}
