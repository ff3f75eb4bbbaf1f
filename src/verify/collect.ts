import { VmforkError, toVmforkError } from '../errors.js';
import { GuestAgentClient } from '../qemu/index.js';
import { currentProcess, getTemplate, requireTemplate, templateChildren, type ProcessRow, type TemplateRow, type VmRow } from '../store/index.js';
import { templateRecordOf } from '../template/index.js';
import { getVmReconciled, hereHost, type VmDeps } from '../vm/index.js';
import { readGuest } from './guest.js';
import { netnsOfProcess, pingInNetns, queryMainMac, scanHostKeys } from './probes.js';
import { buildReport } from './report.js';
import type { ChildFacts, CollectionError, FactSource, SkippedVm, VerifyReport } from './types.js';

export interface VerifyRequest {
  /** Every child of this template. Exclusive with `names`. */
  template?: string;
  /** These VMs. */
  names?: string[];
  /** Children collected at once. @default 4 */
  concurrency?: number;
  /** @default 2000 */
  maxClockOffsetMs?: number;
  /**
   * Collects children that run on another host of the fleet (their QEMU, guest agent socket and namespace are
   * there): the CLI passes one that asks that host's agent (src/host-agent/). Without it, such a child is a
   * problem of its own (VMFORK_VM_ELSEWHERE), never silently skipped.
   */
  collectOnHost?: (host: string, names: string[]) => Promise<HostCollection>;
}

/** What one host collected of its children (and the ones it found not running). */
export interface HostCollection {
  children: ChildFacts[];
  skipped: SkippedVm[];
}

interface Target {
  vm: VmRow;
  templateBootId: string | null;
}

/** The template's boot_id, read from the parent guest when it was frozen; null when there is no record. */
function recordedBootId(row: TemplateRow | undefined): string | null {
  return (row ? templateRecordOf(row)?.bootId?.toLowerCase() : undefined) ?? null;
}

async function select(deps: VmDeps, req: VerifyRequest): Promise<{ targets: Target[]; skipped: SkippedVm[] }> {
  const names = req.names ?? [];
  if (req.template && names.length) throw new VmforkError('VMFORK_INVALID_ARGUMENT', 'give either --template or VM names, not both');
  if (!req.template && !names.length) throw new VmforkError('VMFORK_INVALID_ARGUMENT', 'name the VMs to verify, or pass --template T for all its children');
  const chosen = req.template ? await templateChildren(deps.db, (await requireTemplate(deps.db, req.template)).name) : [...new Set(names)];
  const bootIds = new Map<string, string | null>();
  const targets: Target[] = [];
  const skipped: SkippedVm[] = [];
  for (const name of chosen) {
    // reconciled: a VM whose QEMU died since it was recorded shows as stopped/failed here, not as running
    const vm = await getVmReconciled(deps, name);
    if (vm.state !== 'running') {
      skipped.push({ name, state: vm.state });
      continue;
    }
    const t = vm.template_name ?? null;
    if (t && !bootIds.has(t)) bootIds.set(t, recordedBootId(await getTemplate(deps.db, t)));
    targets.push({ vm, templateBootId: t ? (bootIds.get(t) ?? null) : null });
  }
  return { targets, skipped };
}

/**
 * Runs `fn` for one source, timing it, and records a failure under `source` instead of throwing: one broken
 * source must not hide the others.
 */
async function attempt<T>(acc: Accumulator, source: FactSource, fn: () => Promise<T>): Promise<T | null> {
  const t0 = performance.now();
  try {
    return await fn();
  } catch (err) {
    const e = toVmforkError(err);
    acc.errors.push({ source, code: e.code, message: e.message });
    return null;
  } finally {
    acc.sourceMs[source] = Math.round(performance.now() - t0);
  }
}

interface Accumulator {
  errors: CollectionError[];
  sourceMs: ChildFacts['sourceMs'];
}

async function readGuestOver(agentPath: string): Promise<Awaited<ReturnType<typeof readGuest>>> {
  const agent = await GuestAgentClient.connect(agentPath, { timeoutMs: 5_000 });
  try {
    return await readGuest(agent);
  } finally {
    agent.close();
  }
}

/** Collects one running child: guest, QEMU and namespace at once, then ping and ssh-keyscan to the guest's address. */
export async function collectChild(deps: VmDeps, target: Target): Promise<ChildFacts> {
  const t0 = performance.now();
  const { vm, templateBootId } = target;
  const acc: Accumulator = { errors: [], sourceMs: {} };
  const found = await currentProcess(deps.db, vm.name);
  // the QEMU may exit between selection and here: each source then reports it instead of the run aborting
  const proc = (): ProcessRow => {
    if (!found) throw new VmforkError('VMFORK_VM_STATE', `VM ${vm.name} has no live QEMU process any more`);
    return found;
  };
  const [guest, nic, netns] = await Promise.all([
    attempt(acc, 'guest', async () => {
      const agentPath = proc().agent_path;
      if (!agentPath) throw new VmforkError('VMFORK_AGENT_UNAVAILABLE', `VM ${vm.name} has no guest agent channel`);
      return readGuestOver(agentPath);
    }),
    attempt(acc, 'qmp', () => queryMainMac(proc().qmp_path)),
    attempt(acc, 'netns', async () => {
      const { pid } = proc();
      const ns = await netnsOfProcess(pid);
      if (!ns) throw new VmforkError('VMFORK_NETWORK_FAILED', `QEMU (pid ${pid}) is in no named network namespace: nothing to ping from`);
      return ns;
    }),
  ]);
  if (guest?.stderr) deps.log.debug({ vm: vm.name, stderr: guest.stderr }, 'verify: guest script stderr');
  const ipv4 = guest?.ipv4 ?? null;
  // both probes go to the address the GUEST has, inside the namespace the KERNEL says QEMU is in
  const [ping, keys] = ipv4 && netns ? await Promise.all([attempt(acc, 'ping', () => pingInNetns(netns, ipv4)), attempt(acc, 'ssh', () => scanHostKeys(netns, ipv4))]) : [null, null];
  const bootId = guest?.bootId ?? null;
  const matches = bootId && templateBootId ? bootId === templateBootId : null;
  return {
    name: vm.name,
    template: vm.template_name ?? null,
    netns,
    hostname: guest?.hostname ?? null,
    mac: guest?.mac ?? null,
    qemuMac: nic?.mainMac ?? null,
    ipv4,
    ipv6LinkLocal: guest?.ipv6LinkLocal ?? null,
    ipv6Flags: guest?.ipv6Flags ?? [],
    machineId: guest?.machineId ?? null,
    bootId,
    templateBootId,
    bootIdMatchesTemplate: matches,
    reboots: matches ? 0 : null,
    urandom: guest?.urandom ?? null,
    clockOffsetMs: guest?.clock?.offsetMs ?? null,
    clockUncertaintyMs: guest?.clock?.uncertaintyMs ?? null,
    sshHostKeys: keys ?? [],
    reachable: ping?.reachable ?? null,
    pingRttMs: ping?.rttMs ?? null,
    collectMs: Math.round(performance.now() - t0),
    sourceMs: acc.sourceMs,
    errors: acc.errors,
  };
}

/** Collects these VMs, all on this host (a host's agent, for `vmfork verify` run elsewhere in the fleet). */
export async function collectHere(deps: VmDeps, names: string[], concurrency = 4): Promise<HostCollection> {
  const { targets, skipped } = await select(deps, { names });
  for (const t of targets) {
    if (t.vm.host_id !== hereHost(deps)) throw new VmforkError('VMFORK_VM_ELSEWHERE', `VM ${t.vm.name} is on host ${t.vm.host_id}, not here`, { details: { vm: t.vm.name, host: t.vm.host_id } });
  }
  return { children: await collectAll(deps, targets, concurrency), skipped };
}

async function collectAll(deps: VmDeps, targets: Target[], concurrency: number): Promise<ChildFacts[]> {
  const queue = [...targets];
  const children: ChildFacts[] = [];
  const worker = async (): Promise<void> => {
    for (let t = queue.shift(); t !== undefined; t = queue.shift()) children.push(await collectChild(deps, t));
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, targets.length)) }, worker));
  return children;
}

/** A child that could not be collected at all (its host's agent failed): one error, every fact unknown. */
function uncollected(name: string, template: string | null, err: unknown): ChildFacts {
  const e = toVmforkError(err);
  return {
    name, template, netns: null, hostname: null, mac: null, qemuMac: null, ipv4: null, ipv6LinkLocal: null, ipv6Flags: [], machineId: null, bootId: null,
    templateBootId: null, bootIdMatchesTemplate: null, reboots: null, urandom: null, clockOffsetMs: null, clockUncertaintyMs: null, sshHostKeys: [],
    reachable: null, pingRttMs: null, collectMs: 0, sourceMs: {}, errors: [{ source: 'guest', code: e.code, message: e.message }],
  };
}

/**
 * `vmfork verify`: selects the running VMs (others are listed as skipped with their state), collects each
 * under a concurrency limit, then compares them all. Collection failures become problems of their child. Children
 * on other hosts of the fleet are collected there by `collectOnHost`, at once with this host's, and compared with
 * all the others: distinct across the fleet, not only per host.
 */
export async function verifyChildren(deps: VmDeps, req: VerifyRequest): Promise<VerifyReport> {
  const t0 = performance.now();
  const concurrency = req.concurrency ?? 4;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new VmforkError('VMFORK_INVALID_ARGUMENT', `concurrency must be a positive integer, got ${String(req.concurrency)}`);
  const { targets, skipped } = await select(deps, req);
  const here = hereHost(deps);
  const elsewhere = new Map<string, Target[]>();
  for (const t of targets.filter((x) => x.vm.host_id !== here)) elsewhere.set(t.vm.host_id, [...(elsewhere.get(t.vm.host_id) ?? []), t]);
  const children: ChildFacts[] = [];
  const remote = [...elsewhere].map(async ([host, ts]) => {
    try {
      if (!req.collectOnHost) throw new VmforkError('VMFORK_VM_ELSEWHERE', `on host ${host}: verify it from there, or with the fleet's --db`, { details: { host } });
      const got = await req.collectOnHost(host, ts.map((t) => t.vm.name));
      children.push(...got.children);
      skipped.push(...got.skipped);
    } catch (err) {
      children.push(...ts.map((t) => uncollected(t.vm.name, t.vm.template_name ?? null, err)));
    }
  });
  const [local] = await Promise.all([collectAll(deps, targets.filter((x) => x.vm.host_id === here), concurrency), ...remote]);
  children.push(...local);
  children.sort((a, b) => a.name.localeCompare(b.name));
  return buildReport({
    template: req.template ?? null,
    children,
    skipped,
    wallMs: Math.round(performance.now() - t0),
    limits: req.maxClockOffsetMs === undefined ? {} : { maxClockOffsetMs: req.maxClockOffsetMs },
  });
}
