import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { VmforkError, toVmforkError } from '../errors.js';
import { detectAccel, readHostFacts, type AccelChoice } from '../host/accel.js';
import { attachVm, detachVm } from '../network/attach.js';
import { DEFAULT_NETWORK } from '../network/names.js';
import { buildQemuArgv, deviceLayoutHash, deviceLayoutOf } from '../qemu/qemu-argv.js';
import { createOverlay } from '../qemu/qemu-img.js';
import { GuestAgentClient } from '../qemu/guest-agent-client.js';
import { terminateProcess, type LaunchedProcess } from '../qemu/qemu-process.js';
import { LOCAL_HOST_ID } from '../store/db.js';
import { markProcessExited } from '../store/processes-repo.js';
import { deleteTemplateRow, getTemplate, insertTemplate, updateTemplate } from '../store/templates-repo.js';
import { deleteVm, getVm, insertVm } from '../store/vms-repo.js';
import { assertValidName } from '../util/names.js';
import { parseMemoryMiB } from '../util/size.js';
import { checkHostCapacity } from '../vm/capacity.js';
import { readGuestIdentity } from '../vm/guest-identity.js';
import { imageBootSource } from '../vm/image-boot.js';
import { serialTail } from '../vm/serial-log.js';
import type { VmDeps } from '../vm/vm-deps.js';
import { vmChannels, vmPaths } from '../vm/vm-paths.js';
import { startVmProcess } from '../vm/vm-process.js';
import { parseVmSpec, type VmSpecInput } from '../vm/vm-spec.js';
import { localQemuBuild } from './qemu-build.js';
import { cutTemplate, prepareTemplateGuest } from './template-cut.js';
import { sealFile } from './template-files.js';
import type { TemplateRecord } from './template-record.js';
import { templateStateMachine, type TemplateState } from './template-state.js';

export interface CreateTemplateOptions {
  name: string;
  image: string;
  /** @default '512M' */
  memory?: string;
  /** @default 1 */
  cpus?: number;
  /** @default 'auto' */
  accel?: AccelChoice;
  /** Network whose bridge the parent's NIC sits on while it boots (it never gets an address). @default 'default' */
  network?: string;
  /** TCG translation cache in MiB, inherited by children (smaller = less memory per child). @default 32 under TCG */
  tbSizeMiB?: number;
  /** @default 300_000 */
  agentTimeoutMs?: number;
}

export interface TemplateFiles {
  dir: string;
  disk: string;
  ram: string;
  state: string;
}

export function templateFiles(templatesDir: string, name: string): TemplateFiles {
  const dir = join(templatesDir, name);
  return { dir, disk: join(dir, 'disk.qcow2'), ram: join(dir, 'ram'), state: join(dir, 'state') };
}

async function setState(deps: VmDeps, name: string, from: TemplateState, to: TemplateState, lastError?: string): Promise<TemplateState> {
  templateStateMachine.assertTransition(from, to, name);
  await updateTemplate(deps.db, name, { state: to, ...(lastError ? { last_error: lastError } : {}) });
  return to;
}

/**
 * Creates a template ("forked state"): boots a parent from a linked clone of the image with its RAM in a shared
 * file, waits for the agent, prepares the guest, then freezes it (device state only; the RAM stays in the file)
 * and seals RAM, state and disk read-only with their sha256. Rolls everything back on failure.
 */
export async function createTemplate(deps: VmDeps, options: CreateTemplateOptions): Promise<TemplateRecord> {
  const { db, home, log } = deps;
  assertValidName(options.name, 'template');
  const memoryMiB = parseMemoryMiB(options.memory ?? '512M');
  const cpus = options.cpus ?? 1;
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > 64) throw new VmforkError('VMFORK_INVALID_ARGUMENT', `--cpus must be 1 to 64, got ${String(options.cpus)}`);
  const source = await imageBootSource(db, options.image);
  const image = source.image;
  if (await getTemplate(db, options.name)) throw new VmforkError('VMFORK_TEMPLATE_EXISTS', `a template named "${options.name}" already exists`);
  if (await getVm(db, options.name)) throw new VmforkError('VMFORK_VM_EXISTS', `a VM named "${options.name}" already exists; a template's parent takes its name`);
  const accel = detectAccel(await readHostFacts(), options.accel ?? 'auto');
  const qemu = await localQemuBuild();
  const files = templateFiles(home.templates, options.name);
  const paths = { ...vmPaths(home.templates, options.name), disk: files.disk };
  // the RAM file is written in full by the parent; its disk overlay and state are small
  await checkHostCapacity({ dir: home.root, diskBytes: memoryMiB * 1024 ** 2 + 512 * 1024 ** 2, memoryMiB, count: 1 });
  const network = options.network ?? DEFAULT_NETWORK.name;
  const specBase = {
    name: options.name,
    accel: accel.accel,
    ...(accel.accel === 'tcg' ? { tbSizeMiB: options.tbSizeMiB ?? 32 } : {}),
    cpus,
    memoryMiB,
    memory: { kind: 'file' as const, path: files.ram, share: true },
    disks: [{ id: 'disk0', path: files.disk, format: 'qcow2' as const }],
    ...vmChannels(paths),
  };
  const now = new Date().toISOString();
  await insertTemplate(db, {
    name: options.name,
    image_name: image.name,
    state: 'creating',
    dir: files.dir,
    spec_json: '{}',
    record_json: null,
    last_error: null,
    created_at: now,
    updated_at: now,
  });
  let state: TemplateState = 'creating';
  let launched: LaunchedProcess | undefined;
  let attached = false;
  let agent: GuestAgentClient | undefined;
  try {
    await mkdir(files.dir, { recursive: true });
    await createOverlay(image.disk, files.disk, { backingFormat: source.diskFormat });
    const lease = await attachVm(db, { network, vmName: options.name });
    attached = true;
    const spec: VmSpecInput = {
      ...specBase,
      ...source.kernel,
      nics: [{ id: 'net0', mac: lease.mac, backend: { kind: 'tap', ifname: lease.tap } }],
    };
    buildQemuArgv(spec);
    await updateTemplate(db, options.name, { spec_json: JSON.stringify(parseVmSpec(spec)) });
    // the parent is tracked as a VM row while its QEMU runs, so a crash leaves a process vmfork can find and kill
    await insertVm(db, {
      name: options.name,
      host_id: LOCAL_HOST_ID,
      image_name: image.name,
      state: 'starting',
      role: 'template',
      dir: files.dir,
      spec_json: JSON.stringify(spec),
      last_error: null,
      created_at: now,
      updated_at: now,
    });
    state = await setState(deps, options.name, state, 'booting');
    const t0 = performance.now();
    launched = await startVmProcess(deps, options.name, spec, paths, { netns: lease.netns });
    agent = await GuestAgentClient.waitReady(paths.agent, { timeoutMs: options.agentTimeoutMs ?? 300_000 });
    const coldBootSeconds = (performance.now() - t0) / 1000;
    const identity = await readGuestIdentity(agent);
    state = await setState(deps, options.name, state, 'preparing');
    const t1 = performance.now();
    await prepareTemplateGuest(agent);
    const prepareMs = performance.now() - t1;
    agent.close();
    agent = undefined;
    state = await setState(deps, options.name, state, 'freezing');
    const cut = await cutTemplate(paths.qmp, files.state, launched);
    await markProcessExited(db, options.name);
    await deleteVm(db, options.name);
    await detachVm(db, network, options.name);
    attached = false;
    const record: TemplateRecord = {
      image: image.name,
      qemuBuild: qemu.build,
      machine: qemu.machine,
      accel: accel.accel,
      cpuModel: parseVmSpec(spec).cpuModel,
      cpus,
      memoryMiB,
      layout: deviceLayoutOf(spec),
      layoutHash: deviceLayoutHash(spec),
      files: { ram: await sealFile(files.ram), state: await sealFile(files.state), disk: await sealFile(files.disk) },
      bootId: identity.bootId,
      coldBootSeconds: Math.round(coldBootSeconds * 1000) / 1000,
      prepareMs: Math.round(prepareMs),
      cutMs: Math.round(cut.cutMs),
      frozenAt: new Date().toISOString(),
    };
    await updateTemplate(db, options.name, { record_json: JSON.stringify(record) });
    await setState(deps, options.name, state, 'ready');
    log.info({ template: options.name, cutMs: record.cutMs, coldBootSeconds: record.coldBootSeconds }, 'template frozen');
    return record;
  } catch (err) {
    agent?.close();
    const tail = await serialTail(paths.serialLog);
    log.error({ template: options.name, err, serialTail: tail }, 'template creation failed; rolling back');
    if (launched) await terminateProcess(launched.pid, launched.startTime, { graceMs: 1000 }).catch(() => undefined);
    if (await getVm(db, options.name)) await deleteVm(db, options.name);
    if (attached) await detachVm(db, network, options.name).catch(() => undefined);
    await rm(files.dir, { recursive: true, force: true });
    await deleteTemplateRow(db, options.name);
    const e = toVmforkError(err, 'VMFORK_INTERNAL');
    throw new VmforkError(e.code, `template ${options.name}: ${e.message}${tail ? `\n--- serial log tail ---\n${tail}` : ''}`, {
      cause: err,
      details: { ...e.details, template: options.name },
    });
  }
}
