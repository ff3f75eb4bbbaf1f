import { randomUUID } from 'node:crypto';
import { access, rm } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { VmforkError, withContext } from '../errors.js';
import { actorFor, waitForExit } from '../host/index.js';
import { leaseOfVm, plugLease, type Lease } from '../network/index.js';
import { createOverlay, GuestAgentClient, loadState, QmpClient, terminateProcess, type LaunchedProcess } from '../qemu/index.js';
import { decodeVmSpec, parseVmSpec, type VmSpec } from '../spec/index.js';
import { checkpointDisks, currentProcess, getCheckpoint, listCheckpoints, markProcessExited, transition, type CheckpointRow, type VmRow } from '../store/index.js';
import { sameLayer } from './checkpoint-files.js';
import { assertVmStateFor, checkLabel, overlayPath } from './checkpoint-rules.js';
import { readGuestIdentity, type GuestIdentity } from './guest-facts.js';
import { getVmReconciled } from './lifecycle.js';
import type { VmDeps } from './vm-deps.js';
import { vmPathsIn } from './vm-paths.js';
import { startVmProcess } from './vm-process.js';

export interface RevertResult {
  vm: string;
  to: string;
  /** The guest as the reverted QEMU runs it: the checkpoint's boot, so its boot_id and uptime continue from then. */
  identity: GuestIdentity;
  /** From the old QEMU's end to `cont` of the new one. */
  downMs: number;
  totalMs: number;
}

/** The checkpoint a revert asks for, with its files: unknown labels and lost files change nothing. */
async function requireCheckpoint(deps: VmDeps, vm: string, label: string): Promise<CheckpointRow> {
  const row = await getCheckpoint(deps.db, vm, checkLabel(label));
  if (!row) {
    const labels = (await listCheckpoints(deps.db, vm)).map((c) => c.label);
    throw new VmforkError('VMFORK_CHECKPOINT_NOT_FOUND', `VM ${vm} has no checkpoint labelled "${label}"${labels.length ? ` (it has: ${labels.join(', ')})` : ' (it has none)'}`, {
      details: { vm, label, labels },
    });
  }
  if (!row.state_path) {
    throw new VmforkError('VMFORK_NOT_SUPPORTED', `checkpoint ${label} of ${vm} holds disks only (--no-memory); a revert resumes a checkpoint with its memory`, { details: { vm, label } });
  }
  for (const file of [row.state_path, ...checkpointDisks(row).map((d) => d.path)]) {
    await access(file).catch((err: unknown) => {
      throw new VmforkError('VMFORK_CHECKPOINT_NOT_FOUND', `checkpoint ${label} of ${vm} lost its file ${file}`, { cause: err, details: { vm, label, file } });
    });
  }
  for (const disk of checkpointDisks(row)) {
    if (!(await sameLayer(disk))) {
      throw new VmforkError('VMFORK_CHECKPOINT_NOT_FOUND', `checkpoint ${label} of ${vm}: its disk layer ${disk.path} was made anew since (its RAM would resume over another disk)`, {
        details: { vm, label, file: disk.path },
      });
    }
  }
  return row;
}

/** The checks of a revert, before anything is touched: the checkpoint and its files exist, the VM's state allows it. */
export async function planRevert(deps: VmDeps, name: string, label: string): Promise<{ vm: VmRow; row: CheckpointRow }> {
  const vm = await getVmReconciled(deps, name);
  const row = await requireCheckpoint(deps, name, label);
  assertVmStateFor('revert', vm);
  return { vm, row };
}

/** The lease a VM's NIC is wired with, if it has one (a tap in its network's namespace). */
function leaseOf(deps: VmDeps, vm: string): Promise<Lease | undefined> {
  return leaseOfVm(deps.db, vm);
}

/** Ends the VM's current QEMU (running → stopping → stopped): quit over QMP, SIGTERM/SIGKILL past 10 s. */
async function endQemu(deps: VmDeps, vm: VmRow): Promise<void> {
  const actor = await actorFor('stop');
  await transition(deps.db, 'vms', vm.name, vm.state, 'stopping', actor);
  const proc = await currentProcess(deps.db, vm.name);
  if (proc) {
    const qmp = await QmpClient.connect(proc.qmp_path, { connectTimeoutMs: 5_000 }).catch(() => undefined);
    await qmp?.quit().catch(() => undefined);
    qmp?.close();
    if (!(await waitForExit(proc.pid, proc.start_time, 10_000))) await terminateProcess(proc.pid, proc.start_time, { graceMs: 2_000 });
    await markProcessExited(deps.db, vm.name);
  }
  await transition(deps.db, 'vms', vm.name, 'stopping', 'stopped', actor);
}

/**
 * Reverts a VM to a checkpoint, without a boot: new overlays on the checkpoint's frozen disks, the VM's QEMU ended,
 * a new one started with the same name, MAC, tap and address at `-incoming defer`, the checkpoint's device and RAM
 * state loaded (the fork engine's restore path, with the RAM in the stream), `cont`, then the guest's clock set to
 * the host's. The disks and the RAM come from the same checkpoint, so from the same instant. A new vmgenid makes
 * the guest reseed its RNG: two reverts to one checkpoint must not draw the same random numbers. The layers the VM
 * ran on before are removed once it runs; the checkpoint stays, to be reverted to again.
 */
export async function revertVm(deps: VmDeps, name: string, label: string, options: { report?: (step: string, percent: number) => Promise<void> } = {}): Promise<RevertResult> {
  const report = options.report ?? (async () => undefined);
  const t0 = performance.now();
  const { vm, row } = await planRevert(deps, name, label);
  const lease = await leaseOf(deps, name);
  const before = decodeVmSpec(vm.spec_json);
  const frozen = new Map(checkpointDisks(row).map((d) => [d.id, d.path]));

  await report('overlays', 10);
  const made: string[] = [];
  const disks = [];
  for (const d of before.disks) {
    const base = frozen.get(d.id);
    if (!base) {
      disks.push(d);
      continue;
    }
    const path = overlayPath(vm.dir, d.id);
    await createOverlay(base, path, { backingFormat: 'qcow2' });
    made.push(path);
    disks.push({ ...d, path });
  }
  const spec: VmSpec = parseVmSpec({ ...before, disks, vmgenid: randomUUID(), incoming: 'defer', incomingState: row.state_path ?? undefined });

  await report('stop', 25);
  if (vm.state === 'running') await endQemu(deps, vm);
  const downAt = performance.now();
  const actor = await actorFor('start');
  await transition(deps.db, 'vms', name, vm.state === 'running' ? 'stopped' : vm.state, 'starting', actor, { last_error: null, spec_json: JSON.stringify(spec) });
  let launched: LaunchedProcess | undefined;
  let agent: GuestAgentClient | undefined;
  try {
    await report('resume', 40);
    if (lease) await plugLease(lease);
    launched = await startVmProcess(deps, name, spec, vmPathsIn(vm.dir), lease ? { netns: lease.netns } : {});
    const qmp = await QmpClient.connect(spec.qmpSocket, { connectTimeoutMs: 30_000 });
    try {
      // no x-ignore-shared: the checkpoint's stream carries the RAM itself
      await qmp.migrateSetCapabilities([{ capability: 'x-ignore-shared', state: false }]);
      await loadState(qmp, { timeoutMs: 600_000, pollMs: 20 });
      await qmp.cont();
    } finally {
      qmp.close();
    }
    const downMs = performance.now() - downAt;
    await report('guest', 80);
    agent = await GuestAgentClient.waitReady(spec.agentSocket ?? '', { timeoutMs: 120_000 });
    // the checkpoint's instant lies inside its freeze window: the guest resumes with its file systems frozen and
    // its agent refusing all but thaw, so thaw comes first
    if ((await agent.fsfreezeStatus({ timeoutMs: 30_000 })) === 'frozen') await agent.fsfreezeThaw({ timeoutMs: 60_000 });
    // the guest's wall clock stood still since the checkpoint; its uptime (monotonic) rightly did too
    await agent.setTime(BigInt(Date.now()) * 1_000_000n, { timeoutMs: 30_000 });
    const identity = await readGuestIdentity(agent);
    await transition(deps.db, 'vms', name, 'starting', 'running', actor);
    await dropOldLayers(deps, vm, before, spec);
    return { vm: name, to: row.label, identity, downMs: Math.round(downMs), totalMs: Math.round(performance.now() - t0) };
  } catch (err) {
    if (launched) {
      await terminateProcess(launched.pid, launched.startTime, { graceMs: 2_000 }).catch(() => undefined);
      await markProcessExited(deps.db, name);
    }
    // the VM is left failed on the layers it ran on before: a revert run again starts over from there
    await transition(deps.db, 'vms', name, 'starting', 'failed', actor, { last_error: (err as Error).message, spec_json: JSON.stringify({ ...spec, disks: before.disks }) }).catch(() => undefined);
    for (const path of made) await rm(path, { force: true });
    throw withContext(err, `revert of ${name} to ${row.label}`, { fallback: 'VMFORK_VM_START_FAILED' });
  } finally {
    agent?.close();
  }
}

/**
 * The layers the VM ran on before the revert: removed unless some checkpoint froze them (a later checkpoint's
 * disk is a layer of its own chain) — and only files in the VM's overlays/ (never its first disk or a template's).
 */
async function dropOldLayers(deps: VmDeps, vm: VmRow, before: VmSpec, now: VmSpec): Promise<void> {
  const kept = new Set((await listCheckpoints(deps.db, vm.name)).flatMap((c) => checkpointDisks(c).map((d) => d.path)));
  for (const p of now.disks.map((d) => d.path)) kept.add(p);
  const overlays = join(vm.dir, 'overlays') + sep;
  for (const d of before.disks) {
    if (kept.has(d.path) || !d.path.startsWith(overlays)) continue;
    await rm(d.path, { force: true }).catch((err: unknown) => deps.log.warn({ vm: vm.name, path: d.path, err }, 'revert: an old layer could not be removed'));
  }
}

/** A VM's checkpoints, oldest first, as the CLI and the API show them. */
export async function listVmCheckpoints(deps: VmDeps, name: string): Promise<{ label: string; memory: boolean; createdAt: string; disks: { id: string; path: string }[]; statePath?: string }[]> {
  await getVmReconciled(deps, name);
  return (await listCheckpoints(deps.db, name)).map((c) => ({
    label: c.label,
    memory: c.memory === 1,
    createdAt: c.created_at,
    disks: checkpointDisks(c),
    ...(c.state_path ? { statePath: c.state_path } : {}),
  }));
}
