import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { VmforkError, withContext } from '../errors.js';
import { freeSpace } from '../host/index.js';
import { GuestAgentClient, QmpClient } from '../qemu/index.js';
import { decodeVmSpec } from '../spec/index.js';
import { currentProcess, getCheckpoint, insertCheckpoint, listCheckpoints, updateVm, type CheckpointDisk, type ProcessRow, type VmRow } from '../store/index.js';
import { assertVmStateFor, checkLabel, checkpointDir, defaultLabel, overlayPath } from './checkpoint-rules.js';
import { cutCheckpoint, type CutTimes } from './checkpoint-cut.js';
import { frozenDisks } from './checkpoint-files.js';
import { getVmReconciled } from './lifecycle.js';
import type { VmDeps } from './vm-deps.js';
import { giveToQemu } from './vm-confine.js';

export interface CheckpointOptions {
  /** @default a timestamp-derived label (`ckpt-YYYYMMDD-HHMMSS`) */
  label?: string;
  /** Save the device and RAM state too (a revert then resumes at the same instruction). @default true */
  memory?: boolean;
  /** A task's step reporter: called as each stage begins. */
  report?: (step: string, percent: number) => Promise<void>;
  /**
   * The task is run again after its server died: a guest it left stopped or frozen is resumed and thawed first,
   * and a checkpoint it already completed is answered as it is.
   */
  resume?: boolean;
}

export interface CheckpointResult {
  vm: string;
  label: string;
  memory: boolean;
  createdAt: string;
  /** The frozen disks (the layers that were active at the cut). */
  disks: CheckpointDisk[];
  statePath?: string;
  stateBytes?: number;
  /** From `stop` to `cont`: how long the guest's CPUs stood still. */
  pausedMs: number;
  /** From the freeze to the thaw: how long the guest's file systems refused writes. */
  frozenMs: number;
}

/**
 * The checks of a checkpoint, before anything is touched: the VM is running, the label is well formed and not
 * taken (none given: a timestamp-derived one).
 */
export async function planCheckpoint(deps: VmDeps, name: string, label?: string, options: { memory?: boolean } = {}): Promise<{ vm: VmRow; label: string }> {
  const vm = await getVmReconciled(deps, name);
  const taken = new Set((await listCheckpoints(deps.db, name)).map((c) => c.label));
  if (label !== undefined && taken.has(checkLabel(label))) {
    throw new VmforkError('VMFORK_CHECKPOINT_EXISTS', `VM ${name} already has a checkpoint labelled "${label}"`, { details: { vm: name, label } });
  }
  assertVmStateFor('checkpoint', vm);
  if (options.memory !== false) {
    // the state file holds at most the guest's RAM (and a few MiB of device state): room for that, checked first
    const needBytes = (decodeVmSpec(vm.spec_json).memoryMiB + STATE_MARGIN_MIB) * 1024 ** 2;
    const { freeBytes, measured } = await freeSpace(vm.dir);
    if (freeBytes < needBytes) {
      throw new VmforkError('VMFORK_NO_SPACE', `a checkpoint of ${name} with memory needs up to ${Math.ceil(needBytes / 1024 ** 2)} MiB free in ${measured}; ${Math.floor(freeBytes / 1024 ** 2)} MiB are`, {
        details: { vm: name, needBytes, freeBytes, path: measured },
      });
    }
  }
  return { vm, label: label ?? defaultLabel(new Date(), taken) };
}

/** Device state and firmware blocks beside the RAM in a state file, plus the new overlays' first clusters. */
const STATE_MARGIN_MIB = 64;

/**
 * Checkpoints a running VM without stopping its guest for long: fsfreeze through the guest agent (the file systems
 * are clean on disk), then ONE stopped instant in which every writable disk's active layer is frozen by an
 * external snapshot (one QMP `transaction` onto new overlays, which become the active layers) and, with memory,
 * the device and RAM state is saved to the checkpoint's `state` file; then `cont` and thaw. The order is the
 * invariant: the snapshot and the save happen with the CPUs stopped, so the frozen disks and the saved RAM
 * describe the same instant, and the snapshot precedes the save (a completed migration inactivates the disks).
 * The row is written last: a checkpoint exists only once all of its files do.
 */
export async function checkpointVm(deps: VmDeps, name: string, options: CheckpointOptions = {}): Promise<CheckpointResult> {
  const report = options.report ?? (async () => undefined);
  const done = options.resume && options.label !== undefined ? await getCheckpoint(deps.db, name, options.label) : undefined;
  if (done) return resultOf(done, { pausedMs: 0, frozenMs: 0 });
  const { vm, label } = await planCheckpoint(deps, name, options.label, { memory: options.memory ?? true });
  const proc = await currentProcess(deps.db, name);
  if (!proc?.agent_path) throw new VmforkError('VMFORK_AGENT_UNAVAILABLE', `VM ${name} has no guest agent channel: its file systems cannot be frozen`, { details: { vm: name } });
  const memory = options.memory ?? true;
  const dir = checkpointDir(vm.dir, label);
  const spec = decodeVmSpec(vm.spec_json);
  const writable = spec.disks.filter((d) => !d.readOnly);
  if (options.resume) await settle(proc);
  // files a run killed before its row was written: never a layer of the chain (those are in overlays/)
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await mkdir(join(vm.dir, 'overlays'), { recursive: true });
  // QEMU makes the new overlays itself, as the VM's uid (it dropped root at start)
  await giveToQemu(deps, name, join(vm.dir, 'overlays'));

  const next = writable.map((d) => ({ id: d.id, frozen: d.path, active: overlayPath(vm.dir, d.id) }));
  const statePath = memory ? join(dir, 'state') : undefined;
  let times: CutTimes;
  try {
    times = await cutCheckpoint({
      qmpPath: proc.qmp_path,
      agentPath: proc.agent_path,
      snapshots: next,
      ...(statePath ? { statePath } : {}),
      report,
      log: deps.log.child({ vm: name }),
      // the new layers are what QEMU writes to from now on: the record says so before anything else can fail
      onSnapshot: () => updateVm(deps.db, name, { spec_json: JSON.stringify({ ...spec, disks: spec.disks.map((d) => ({ ...d, path: next.find((n) => n.id === d.id)?.active ?? d.path })) }) }),
    });
  } catch (err) {
    throw withContext(err, `checkpoint ${label} of ${name}`, { fallback: 'VMFORK_QMP_ERROR' });
  }
  await report('record', 90);
  const createdAt = new Date().toISOString();
  const frozen = await frozenDisks(next.map((d) => ({ id: d.id, path: d.frozen })));
  await insertCheckpoint(deps.db, { vm_name: name, label, memory: memory ? 1 : 0, state_path: statePath ?? null, disks_json: JSON.stringify(frozen), created_at: createdAt });
  const stateBytes = statePath ? (await stat(statePath)).size : undefined;
  return { vm: name, label, memory, createdAt, disks: frozen, ...(statePath ? { statePath } : {}), ...(stateBytes !== undefined ? { stateBytes } : {}), ...times };
}

function resultOf(row: { vm_name: string; label: string; memory: number; state_path: string | null; disks_json: string; created_at: string }, times: { pausedMs: number; frozenMs: number }): CheckpointResult {
  return {
    vm: row.vm_name,
    label: row.label,
    memory: row.memory === 1,
    createdAt: row.created_at,
    disks: JSON.parse(row.disks_json) as CheckpointDisk[],
    ...(row.state_path ? { statePath: row.state_path } : {}),
    ...times,
  };
}

/** A checkpoint whose server died mid-cut may have left the guest stopped (or after its save) and frozen. */
async function settle(proc: ProcessRow): Promise<void> {
  const qmp = await QmpClient.connect(proc.qmp_path, { connectTimeoutMs: 10_000 });
  try {
    const { status } = await qmp.queryStatus();
    if (status === 'paused' || status === 'postmigrate') await qmp.cont();
  } finally {
    qmp.close();
  }
  if (!proc.agent_path) return;
  const agent = await GuestAgentClient.connect(proc.agent_path, { timeoutMs: 5_000 });
  try {
    if ((await agent.fsfreezeStatus({ timeoutMs: 10_000 })) === 'frozen') await agent.fsfreezeThaw({ timeoutMs: 60_000 });
  } finally {
    agent.close();
  }
}
