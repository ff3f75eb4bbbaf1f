import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { VmforkError, toVmforkError } from '../errors.js';
import { detectAccel, readHostFacts, type AccelChoice, type AccelDecision } from '../host/accel.js';
import { buildQemuArgv } from '../qemu/qemu-argv.js';
import { createOverlay } from '../qemu/qemu-img.js';
import { GuestAgentClient } from '../qemu/guest-agent-client.js';
import { terminateProcess } from '../qemu/qemu-process.js';
import { randomLocalMac } from '../network/mac.js';
import { LOCAL_HOST_ID } from '../store/db.js';
import { deleteVm, insertVm, updateVm } from '../store/vms-repo.js';
import { assertValidName } from '../util/names.js';
import { parseMemoryMiB } from '../util/size.js';
import { imageBootSource, type BootSource } from './image-boot.js';
import { readGuestIdentity } from './guest-identity.js';
import { checkHostCapacity } from './capacity.js';
import type { VmDeps } from './vm-deps.js';
import { vmChannels, vmPaths } from './vm-paths.js';
import { startVmProcess } from './vm-process.js';
import type { VmSpecInput } from './vm-spec.js';
import { serialTail } from './serial-log.js';

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
  memoryMiB: number;
  cpus: number;
  accel: AccelDecision;
  spec: VmSpecInput;
  source: BootSource;
}

/**
 * Cold-boots a VM from a linked clone of an image and waits for its guest agent: the baseline every fork
 * benchmark compares against. Validates everything first; on any failure removes what it created (process,
 * overlay, record) and reports the serial log tail.
 */
export async function bootVm(deps: VmDeps, options: BootOptions): Promise<BootResult> {
  const plan = await planBoot(deps, options);
  const { db, home, log } = deps;
  const paths = vmPaths(home.vms, plan.name);
  const now = new Date().toISOString();
  await insertVm(db, {
    name: plan.name,
    host_id: LOCAL_HOST_ID,
    image_name: options.image,
    state: 'creating',
    role: 'vm',
    dir: paths.dir,
    spec_json: JSON.stringify(plan.spec),
    last_error: null,
    created_at: now,
    updated_at: now,
  });
  let launched: { pid: number; startTime: number } | undefined;
  let agent: GuestAgentClient | undefined;
  try {
    await mkdir(paths.dir, { recursive: true });
    await createOverlay(plan.source.image.disk, paths.disk, { backingFormat: plan.source.diskFormat });
    await updateVm(db, plan.name, { state: 'starting' });
    const t0 = performance.now();
    launched = await startVmProcess(deps, plan.name, plan.spec, paths);
    agent = await GuestAgentClient.waitReady(paths.agent, { timeoutMs: options.agentTimeoutMs ?? 300_000 });
    const secondsToAgent = (performance.now() - t0) / 1000;
    const identity = await readGuestIdentity(agent);
    await updateVm(db, plan.name, { state: 'running' });
    return {
      name: plan.name,
      image: options.image,
      bootId: identity.bootId,
      hostname: identity.hostname,
      secondsToAgent: Math.round(secondsToAgent * 1000) / 1000,
      accel: plan.accel.accel,
      accelReason: plan.accel.reason,
      memoryMiB: plan.memoryMiB,
      cpus: plan.cpus,
      pid: launched.pid,
    };
  } catch (err) {
    const tail = await serialTail(paths.serialLog);
    log.error({ vm: plan.name, err, serialTail: tail }, 'boot failed; rolling back');
    if (launched) await terminateProcess(launched.pid, launched.startTime, { graceMs: 2000 }).catch(() => undefined);
    await rm(paths.dir, { recursive: true, force: true });
    await deleteVm(db, plan.name);
    const e = toVmforkError(err, 'VMFORK_VM_START_FAILED');
    throw new VmforkError(e.code, `${e.message.replace(/^[^:]*: /, '')}${tail ? `\n--- serial log tail (${plan.name}) ---\n${tail}` : ''}`, {
      cause: err,
      details: { ...e.details, vm: plan.name, serialTail: tail },
    });
  } finally {
    agent?.close();
  }
}

/** Every check that can fail before anything is written. */
async function planBoot(deps: VmDeps, options: BootOptions): Promise<BootPlan> {
  const name = options.name ?? `vm-${randomBytes(3).toString('hex')}`;
  assertValidName(name, 'VM');
  const memoryMiB = parseMemoryMiB(options.memory ?? '512M');
  const cpus = options.cpus ?? 1;
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > 64) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `--cpus must be a whole number from 1 to 64, got ${String(options.cpus)}`);
  }
  const source = await imageBootSource(deps.db, options.image);
  const accel = detectAccel(await readHostFacts(), options.accel ?? 'auto');
  const paths = vmPaths(deps.home.vms, name);
  await checkHostCapacity({ dir: deps.home.root, diskBytes: 256 * 1024 ** 2, memoryMiB, count: 1 });
  const spec: VmSpecInput = {
    name,
    accel: accel.accel,
    cpus,
    memoryMiB,
    ...source.kernel,
    disks: [{ id: 'disk0', path: paths.disk, format: 'qcow2' }],
    // user-mode networking with restrict=on: the NIC exists (same layout as forked VMs) but reaches nothing
    nics: [{ id: 'net0', mac: randomLocalMac(), backend: { kind: 'user' } }],
    ...vmChannels(paths),
  };
  buildQemuArgv(spec); // validates the spec before anything is written
  return { name, memoryMiB, cpus, accel, spec, source };
}
