import { VmforkError, toVmforkError } from '../errors.js';
import { GuestAgentClient } from '../qemu/index.js';
import { currentProcess, getTemplate, requireTemplate, templateChildren, type ProcessRow, type TemplateRow, type VmRow } from '../store/index.js';
import { templateRecordOf } from '../template/index.js';
import { getVmReconciled, type VmDeps } from '../vm/index.js';
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

/**
 * `vmfork verify`: selects the running VMs (others are listed as skipped with their state), collects each
 * under a concurrency limit, then compares them all. Collection failures become problems of their child.
 */
export async function verifyChildren(deps: VmDeps, req: VerifyRequest): Promise<VerifyReport> {
  const t0 = performance.now();
  const concurrency = req.concurrency ?? 4;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new VmforkError('VMFORK_INVALID_ARGUMENT', `concurrency must be a positive integer, got ${String(req.concurrency)}`);
  const { targets, skipped } = await select(deps, req);
  const queue = [...targets];
  const children: ChildFacts[] = [];
  const worker = async (): Promise<void> => {
    for (let t = queue.shift(); t !== undefined; t = queue.shift()) children.push(await collectChild(deps, t));
  };
  const limit = Math.max(1, Math.min(concurrency, targets.length));
  await Promise.all(Array.from({ length: limit }, worker));
  children.sort((a, b) => a.name.localeCompare(b.name));
  return buildReport({
    template: req.template ?? null,
    children,
    skipped,
    wallMs: Math.round(performance.now() - t0),
    limits: req.maxClockOffsetMs === undefined ? {} : { maxClockOffsetMs: req.maxClockOffsetMs },
  });
}
