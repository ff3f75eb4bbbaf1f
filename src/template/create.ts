import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { VmforkAgentClient } from '../agent/index.js';
import { VmforkError, withContext } from '../errors.js';
import { actorFor, checkHostCapacity, detectAccel, localQemuBuild, readHostFacts, type AccelChoice } from '../host/index.js';
import { attachVm, DEFAULT_NETWORK } from '../network/index.js';
import { createOverlay, deviceLayoutHash, deviceLayoutOf, GuestAgentClient, terminateProcess, type LaunchedProcess } from '../qemu/index.js';
import { parseVmSpec } from '../spec/index.js';
import { getTemplate, getVm, insertTemplate, insertVm, requireTemplate, transition, updateTemplate } from '../store/index.js';
import { assertValidName, faultPoint, parseMemoryMiB } from '../util/index.js';
import { checkCpus, hereHost, imageBootSource, readGuestIdentity, serialTail, startVmProcess, vmChannels, vmPaths, type VmDeps } from '../vm/index.js';
import { freezeParent } from './cut.js';
import { dismantleTemplate } from './dismantle.js';
import { newTemplateId, prepareThroughAgent, type AgentForkRecord } from './agent-prepare.js';
import { sealFile, templateFiles, type FileRecord, type TemplateFiles } from './files.js';
import { prepareTemplateGuest } from './prepare.js';
import type { TemplateRecord } from './record.js';

/** TCG translation cache of a template (and so of its children) unless told otherwise. */
export const DEFAULT_TCG_TB_SIZE_MIB = 32;

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
  /** TCG translation cache in MiB, inherited by children (smaller = less memory per child). @default DEFAULT_TCG_TB_SIZE_MIB under TCG */
  tbSizeMiB?: number;
  /** @default 300_000 */
  agentTimeoutMs?: number;
  /**
   * The disks the parent boots from, each overlaid by the template's own (kept immutable: a pool's replica).
   * @default the image's disk as `disk0`
   */
  sourceDisks?: readonly SourceDisk[];
  /** The replica whose disks these are (a pool's template): recorded with the template from its first row. */
  replicaId?: string;
  /**
   * A VGA device (guest-visible: every child of the template has it too, and can serve it over VNC) and the parent's
   * VNC socket; the parent boots with `console=tty0` ahead of ttyS0, so the screen shows the kernel's messages.
   * @default false
   */
  screen?: boolean;
  /**
   * A cancelled task: checked between the steps; once it aborts, the parent's QEMU is stopped at once, so the wait in
   * progress (agent, prepare, cut) ends within moments, and the half-made template is rolled back as after a failure.
   */
  signal?: AbortSignal;
}

/** A disk a template's parent is overlaid on; `disk0` is the system disk the kernel's root= names. */
export interface SourceDisk {
  id: string;
  path: string;
  format: 'qcow2' | 'raw';
}

/**
 * Creates a template ("forked state"): boots a parent from a linked clone of the image with its RAM in a shared
 * file, waits for the agent, prepares the guest, then freezes it (device state only; the RAM stays in the file)
 * and seals RAM, state and disk read-only with their sha256. An image that carries vmfork-guest is forked on the
 * agent path: the parent gets the agent's port, the agent prepares the guest and asks to be forked (FORK_ME), and
 * the cut happens on that request; other images take the script path (prepare script through qemu-ga). The template and its parent VM move through their
 * states owned by this process; on failure everything is rolled back, and if this process dies instead, the next
 * vmfork command rolls it back (src/heal/). A cancel (`signal`) is such a failure.
 */
export async function createTemplate(deps: VmDeps, options: CreateTemplateOptions): Promise<TemplateRecord> {
  const { db, home, log } = deps;
  assertValidName(options.name, 'template');
  const memoryMiB = parseMemoryMiB(options.memory ?? '512M');
  const cpus = checkCpus(options.cpus);
  const source = await imageBootSource(db, options.image, { screen: options.screen === true });
  if (await getTemplate(db, options.name)) throw new VmforkError('VMFORK_TEMPLATE_EXISTS', `a template named "${options.name}" already exists`, { details: { template: options.name } });
  if (await getVm(db, options.name)) throw new VmforkError('VMFORK_VM_EXISTS', `a VM named "${options.name}" already exists; a template's parent takes its name`, { details: { vm: options.name } });
  const accel = detectAccel(await readHostFacts(), options.accel ?? 'auto');
  const qemu = await localQemuBuild({ cacheFile: join(home.run, 'qemu-build.json') });
  const files = templateFiles(home.templates, options.name);
  const paths = { ...vmPaths(home.templates, options.name), disk: files.disk };
  // the RAM file is written in full by the parent; its disk overlay and state are small
  await checkHostCapacity({ dir: home.root, diskBytes: memoryMiB * 1024 ** 2 + 512 * 1024 ** 2, memoryMiB, count: 1 });
  const network = options.network ?? DEFAULT_NETWORK.name;
  const sources = options.sourceDisks ?? [{ id: 'disk0', path: source.image.disk, format: source.diskFormat }];
  if (sources[0]?.id !== 'disk0') throw new VmforkError('VMFORK_INVALID_ARGUMENT', 'the first source disk must be disk0, the system disk', { details: { disks: sources.map((d) => d.id) } });
  const actor = await actorFor('template-create');
  const { signal } = options;
  signal?.throwIfAborted();
  const now = new Date().toISOString();
  const base = { name: options.name, image_name: source.image.name, dir: files.dir, last_error: null, created_at: now, updated_at: now };
  await insertTemplate(db, { ...base, state: 'creating', spec_json: '{}', record_json: null, replica_id: options.replicaId ?? null, host_id: hereHost(deps) }, actor);
  let launched: LaunchedProcess | undefined;
  let agent: GuestAgentClient | undefined;
  let vfg: VmforkAgentClient | undefined;
  // the agent path needs the agent in the image and its port on the parent (and so on every child)
  const viaAgent = source.image.guestAgent !== null;
  // a cancel stops the parent: every wait on it (agent, prepare, cut) then fails at once, and the rollback below runs
  const stopParent = (): void => void (launched && terminateProcess(launched.pid, launched.startTime, { graceMs: 1_000 }).catch(() => undefined));
  signal?.addEventListener('abort', stopParent, { once: true });
  try {
    await mkdir(files.dir, { recursive: true });
    for (const d of sources) await createOverlay(d.path, files.diskFor(d.id), { backingFormat: d.format });
    const lease = await attachVm(db, { network, vmName: options.name, host: hereHost(deps) });
    const spec = parseVmSpec({
      name: options.name,
      accel: accel.accel,
      ...(accel.accel === 'tcg' ? { tbSizeMiB: options.tbSizeMiB ?? DEFAULT_TCG_TB_SIZE_MIB } : {}),
      cpus,
      memoryMiB,
      memory: { kind: 'file', path: files.ram, share: true },
      ...source.kernel,
      disks: sources.map((d) => ({ id: d.id, path: files.diskFor(d.id), format: 'qcow2' as const })),
      nics: [{ id: 'net0', mac: lease.mac, backend: { kind: 'tap', ifname: lease.tap } }],
      ...vmChannels(paths, { vmforkAgent: viaAgent, screen: options.screen === true }),
    });
    await updateTemplate(db, options.name, { spec_json: JSON.stringify(spec) });
    // the parent is a VM record while its QEMU runs, so a crash leaves a process vmfork can find and kill
    await insertVm(db, { ...base, host_id: hereHost(deps), template_name: null, state: 'creating', role: 'template', spec_json: JSON.stringify(spec) }, actor);
    await transition(db, 'templates', options.name, 'creating', 'booting', actor);
    await transition(db, 'vms', options.name, 'creating', 'starting', actor);
    const t0 = performance.now();
    signal?.throwIfAborted();
    launched = await startVmProcess(deps, options.name, spec, paths, { netns: lease.netns });
    signal?.throwIfAborted();
    agent = await GuestAgentClient.waitReady(paths.agent, { timeoutMs: options.agentTimeoutMs ?? 300_000, signal });
    const coldBootSeconds = (performance.now() - t0) / 1000;
    await transition(db, 'vms', options.name, 'starting', 'running', actor);
    faultPoint('template.booted');
    const identity = await readGuestIdentity(agent);
    await transition(db, 'templates', options.name, 'booting', 'preparing', actor);
    let prepareMs: number;
    let agentFork: AgentForkRecord | undefined;
    if (viaAgent && spec.vmforkAgentSocket) {
      agent.close();
      agent = undefined;
      const prepared = await prepareThroughAgent(spec.vmforkAgentSocket, newTemplateId(options.name), { timeoutMs: options.agentTimeoutMs ?? 300_000, signal });
      vfg = prepared.client;
      agentFork = prepared.fork;
      prepareMs = prepared.prepareMs;
    } else {
      const t1 = performance.now();
      await prepareTemplateGuest(agent);
      prepareMs = performance.now() - t1;
      agent.close();
      agent = undefined;
    }
    // on the agent path the guest now waits for its configuration: cut before it does anything else
    signal?.throwIfAborted();
    const cut = await freezeParent(deps, options.name, { qmpPath: paths.qmp, statePath: files.state, proc: launched, network }, actor);
    vfg?.close();
    vfg = undefined;
    signal?.throwIfAborted();
    const record: TemplateRecord = {
      image: source.image.name,
      qemuBuild: qemu.build,
      machine: qemu.machine,
      accel: accel.accel,
      cpuModel: spec.cpuModel,
      cpus,
      memoryMiB,
      layout: deviceLayoutOf(spec),
      layoutHash: deviceLayoutHash(spec),
      files: await sealTemplateFiles(files, sources),
      bootId: identity.bootId,
      coldBootSeconds: Math.round(coldBootSeconds * 1000) / 1000,
      prepareMs: Math.round(prepareMs),
      cutMs: Math.round(cut.cutMs),
      frozenAt: new Date().toISOString(),
      forkPath: agentFork ? 'agent' : 'script',
      ...(agentFork ? { agent: agentFork } : {}),
    };
    faultPoint('template.cut');
    await updateTemplate(db, options.name, { record_json: JSON.stringify(record) });
    await transition(db, 'templates', options.name, 'freezing', 'ready', actor);
    log.info({ template: options.name, cutMs: record.cutMs, coldBootSeconds: record.coldBootSeconds, forkPath: record.forkPath }, 'template frozen');
    return record;
  } catch (err) {
    agent?.close();
    vfg?.close();
    const cancelled = signal?.aborted === true;
    // a cancel is no failure to diagnose: its error carries no serial log tail
    const tail = cancelled ? '' : await serialTail(paths.serialLog);
    if (cancelled) log.info({ template: options.name }, 'template creation cancelled; rolling back');
    else log.error({ template: options.name, err, serialTail: tail }, 'template creation failed; rolling back');
    if (launched) await terminateProcess(launched.pid, launched.startTime, { graceMs: 1_000 }).catch(() => undefined);
    await dismantleTemplate(deps, await requireTemplate(db, options.name), actor).catch((e: unknown) => log.error({ template: options.name, err: e }, 'rollback failed; heal finishes it'));
    throw withContext(cancelled ? signal?.reason : err, `template ${options.name}`, { suffix: tail ? `\n--- serial log tail ---\n${tail}` : '', details: { template: options.name } });
  } finally {
    signal?.removeEventListener('abort', stopParent);
  }
}

/** Seals RAM, state and every disk (read-only + sha256); `disk` stays the system disk for older readers. */
export async function sealTemplateFiles(files: TemplateFiles, sources: readonly SourceDisk[]): Promise<TemplateRecord['files']> {
  const disks: Record<string, FileRecord> = {};
  for (const d of sources) disks[d.id] = await sealFile(files.diskFor(d.id));
  return { ram: await sealFile(files.ram), state: await sealFile(files.state), disk: disks.disk0 as FileRecord, disks };
}
