import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { isVmforkError, VmforkError, withContext } from '../errors.js';
import { QmpClient } from '../qemu/index.js';
import { decodeVmSpec, type VmSpec } from '../spec/index.js';
import { currentProcess, requireVm, updateVm } from '../store/index.js';
import { runBlockJob } from './block-job.js';
import { getVmReconciled } from './lifecycle.js';
import { planPromote, type PromoteDisk, type PromotePlan, type PromoteRequest } from './promote-plan.js';
import type { VmDeps } from './vm-deps.js';
import { giveToQemu } from './vm-confine.js';

export interface PromoteOptions extends PromoteRequest {
  /** A task's step reporter (progress from `query-block-jobs`). */
  report?: (step: string, percent: number) => Promise<void>;
  signal?: AbortSignal;
  /** Run again after its server died: a job still in QEMU is awaited, a pivot or stream already done is recorded. */
  resume?: boolean;
}

export interface PromoteResult {
  vm: string;
  mode: 'stream' | 'mirror';
  datastore?: string;
  disks: { id: string; path: string; from: string; bytes: number; seconds: number }[];
  /** Data moved: a mirror's job length (the chain's allocated data it copied), a stream's allocated bytes of the backing layers (an upper bound). */
  bytes: number;
  seconds: number;
  mibPerSecond: number;
  secondsPerGiB: number;
  /** The template the VM was forked from, which its disks no longer need (null: none, e.g. a cold-booted VM). */
  template: string | null;
  /** What still ties the running QEMU to the template's files (docs/promote.md). */
  ram: string;
}

const MIB = 1024 ** 2;

/** The live view of the VM's drives: the file each one reads and writes now, and whether it has a backing image. */
async function liveDrives(qmp: QmpClient): Promise<Map<string, { file: string; backed: boolean }>> {
  const rows = await qmp.execute<{ device: string; inserted?: { file: string; image?: { 'backing-filename'?: string } } }[]>('query-block');
  return new Map(rows.filter((r) => r.inserted).map((r) => [r.device, { file: r.inserted?.file ?? '', backed: r.inserted?.image?.['backing-filename'] !== undefined }]));
}

/** A job's deadline: its bytes at the asked rate (or a slow disk's 2 MiB/s) three times over, plus ten minutes. */
function deadlineFor(bytes: number, rateMiBs: number | undefined): number {
  return Math.ceil((bytes / ((rateMiBs ?? 2) * MIB)) * 3 * 1000) + 10 * 60_000;
}

/**
 * The record of a promoted VM. Its disks are its own, so it is no child of its template any more (template and
 * replica removal count children by `template_name`). Its QEMU still maps the template's RAM file MAP_PRIVATE: the
 * kernel keeps a mapped file's inode until the mapping ends, so removing the template unlinks the file without
 * touching the running guest, and its space is freed when this QEMU exits. The next QEMU of this VM must not
 * need that file: the spec's memory becomes a private file in the VM's own directory (QEMU, given a directory,
 * maps a fresh file there and unlinks it at once), the same `memory-backend-file` layout a revert's state expects.
 */
function promotedSpec(spec: VmSpec, vmDir: string): VmSpec {
  if (spec.memory.kind !== 'file') return spec;
  return { ...spec, memory: { kind: 'file', path: vmDir, share: false } } as VmSpec;
}

/**
 * Promotes a running linked clone to a full clone while its guest runs (issue 12 item 8). Each linked disk is
 * mirrored (`drive-mirror`, sync full) to a new image — in `<datastore>/promoted/<vm>/` with a datastore, else in
 * the VM's own directory — and, once READY, `block-job-complete` pivots the drive onto it and the old overlay is
 * removed. A top image without subclusters is instead streamed into (QMP `block-stream`; the top then has no
 * backing file): QEMU 7.2's stream aborts on vmfork's extended_l2 overlays (promote-plan.ts). Each disk is recorded
 * as soon as its job ends, the VM's template link last, when QEMU's own view says no drive has a backing image.
 */
export async function promoteVm(deps: VmDeps, name: string, options: PromoteOptions = {}): Promise<PromoteResult> {
  const report = options.report ?? (async () => undefined);
  const t0 = performance.now();
  let plan: PromotePlan | undefined;
  try {
    plan = await planPromote(deps, name, options);
  } catch (err) {
    // a resumed task whose streams all ended before its server died: only the record is left to write
    if (!(options.resume && isVmforkError(err) && err.code === 'VMFORK_VM_FULL_CLONE')) throw err;
  }
  const vm = plan?.vm ?? (await getVmReconciled(deps, name));
  const proc = await currentProcess(deps.db, name);
  if (!proc) throw new VmforkError('VMFORK_VM_STATE', `VM ${name} has no QEMU process`, { details: { vm: name, state: vm.state, allowed: ['running'] } });
  const qmp = await QmpClient.connect(proc.qmp_path, { connectTimeoutMs: 10_000 });
  const done: PromoteResult['disks'] = [];
  try {
    const disks = plan?.disks ?? [];
    const total = Math.max(1, disks.reduce((s, d) => s + d.needBytes, 0));
    let before = 0;
    for (const d of disks) {
      const d0 = performance.now();
      const moved = await promoteDisk(deps, qmp, name, d, plan as PromotePlan, options, async (fraction) => report(`${plan?.mode ?? 'stream'} ${d.id}`, 5 + (90 * (before + fraction * d.needBytes)) / total));
      done.push({ id: d.id, path: moved.path, from: d.path, bytes: moved.bytes, seconds: round((performance.now() - d0) / 1000) });
      before += d.needBytes;
    }
    const backed = [...(await liveDrives(qmp)).entries()].filter(([, v]) => v.backed).map(([id]) => id);
    if (backed.length) throw new VmforkError('VMFORK_QMP_ERROR', `after the promotion QEMU still reads drive(s) ${backed.join(', ')} through a backing image`, { details: { vm: name, drives: backed } });
  } catch (err) {
    throw withContext(err, `promote ${name}`, { fallback: 'VMFORK_QMP_ERROR' });
  } finally {
    qmp.close();
  }
  await report('record', 97);
  const row = await requireVm(deps.db, name);
  await updateVm(deps.db, name, { spec_json: JSON.stringify(promotedSpec(decodeVmSpec(row.spec_json), row.dir)), template_name: null });
  const seconds = (performance.now() - t0) / 1000;
  const bytes = done.reduce((s, d) => s + d.bytes, 0);
  return {
    vm: name,
    mode: plan?.mode ?? 'stream',
    ...(plan?.target?.datastore ? { datastore: plan.target.datastore } : {}),
    disks: done,
    bytes,
    seconds: round(seconds),
    mibPerSecond: round(bytes / MIB / Math.max(seconds, 0.001)),
    secondsPerGiB: round(seconds / Math.max(bytes / 1024 ** 3, 1e-9)),
    template: row.template_name,
    ram:
      row.template_name && decodeVmSpec(row.spec_json).memory.kind === 'file'
        ? `until its QEMU exits, ${name} maps template ${row.template_name}'s RAM file copy-on-write; removing the template unlinks it safely, its space is freed at the next power cycle`
        : 'own memory',
  };
}

/** One disk: its job (or the one a dead server left running), then its record. Returns the disk's path now and the bytes moved. */
async function promoteDisk(deps: VmDeps, qmp: QmpClient, vm: string, d: PromoteDisk, plan: PromotePlan, options: PromoteOptions, fraction: (f: number) => Promise<void>): Promise<{ path: string; bytes: number }> {
  const live = (await liveDrives(qmp)).get(d.id);
  const speed = options.rateMiBs ? { speed: Math.round(options.rateMiBs * MIB) } : {};
  const jobId = `promote-${d.id}`;
  let last = -1;
  const progress = async (offset: number, len: number): Promise<void> => {
    const pct = len > 0 ? Math.floor((offset / len) * 100) : 0;
    if (pct - last < 5) return;
    last = pct;
    await fraction(pct / 100);
  };
  const job = { id: jobId, deadlineMs: deadlineFor(d.needBytes, options.rateMiBs), progress, ...(options.signal ? { signal: options.signal } : {}) };
  if (plan.mode === 'stream') {
    const end = await runBlockJob(qmp, { ...job, pivot: false, start: () => qmp.execute('block-stream', { 'job-id': jobId, device: d.id, ...speed }).then(() => undefined) });
    if (end.how === 'gone' && (await liveDrives(qmp)).get(d.id)?.backed) {
      throw new VmforkError('VMFORK_QMP_ERROR', `block job ${jobId} ended and ${d.id} still has a backing image`, { details: { vm, disk: d.id } });
    }
    return { path: d.path, bytes: d.needBytes };
  }
  const dir = plan.target?.dir as string;
  // a pivot a dead server completed and did not record: QEMU already writes the new file
  if (live && live.file !== d.path && !live.backed) return { path: await recordDisk(deps, vm, d, live.file), bytes: 0 };
  await mkdir(dir, { recursive: true });
  // QEMU creates the target as the VM's uid (it dropped root at start): the directory must be that uid's
  await giveToQemu(deps, vm, dir);
  const target = join(dir, `${d.id}-full-${randomBytes(4).toString('hex')}.qcow2`);
  let end;
  try {
    end = await runBlockJob(qmp, {
      ...job,
      pivot: true,
      start: () => qmp.execute('drive-mirror', { 'job-id': jobId, device: d.id, target, format: 'qcow2', sync: 'full', mode: 'absolute-paths', ...speed }).then(() => undefined),
    });
  } catch (err) {
    // a cancelled mirror leaves the old overlay the drive's image: the half-written target is no one's
    if ((await liveDrives(qmp).catch(() => undefined))?.get(d.id)?.file !== target) await rm(target, { force: true });
    throw err;
  }
  const now = (await liveDrives(qmp)).get(d.id);
  if (!now || now.backed || now.file === d.path) throw new VmforkError('VMFORK_QMP_ERROR', `mirror of ${d.id} ended without the pivot onto its new image`, { details: { vm, disk: d.id } });
  return { path: await recordDisk(deps, vm, d, now.file), bytes: end.len };
}

/** The VM's spec names the disk's new file before the old overlay goes, so no moment records a missing file. */
async function recordDisk(deps: VmDeps, vm: string, d: PromoteDisk, file: string): Promise<string> {
  const row = await requireVm(deps.db, vm);
  const spec = decodeVmSpec(row.spec_json);
  await updateVm(deps.db, vm, { spec_json: JSON.stringify({ ...spec, disks: spec.disks.map((x) => (x.id === d.id ? { ...x, path: file } : x)) }) });
  // only the VM's own overlay is removed; a chain's lower layers are the template's
  if (d.path.startsWith(row.dir + sep)) await rm(d.path, { force: true });
  return file;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
