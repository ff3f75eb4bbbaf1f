import { stat } from 'node:fs/promises';
import { VmforkError } from '../src/errors.js';
import type { ForkedChild } from '../src/fork/index.js';
import { QEMU_IMG_BINARY, runQemuTool } from '../src/host/index.js';
import type { GuestAgentClient } from '../src/qemu/index.js';
import { connectAgent, readGuestFacts, showVm, type VmDeps } from '../src/vm/index.js';
import type { ChildSample, ForkBenchRaw, MemorySample } from './fork-result.js';
import { parseSmapsRollup, readProcessMemory } from './smaps.js';

/** The raw sample of a forked child as the engine reported it; probes fill in the rest later. */
export function childSample(c: ForkedChild): ChildSample {
  return {
    name: c.name,
    pid: c.pid,
    fromWarm: c.fromWarm,
    timings: c.timings,
    identityTotalMs: c.identity.report.totalMs,
    identitySteps: c.identity.report.steps.map((s) => ({ step: s.step, ok: s.ok, ...(s.ms !== undefined ? { ms: s.ms } : {}) })),
  };
}

/**
 * Reads the child's boot_id from the guest, then the allocated size of its overlay (stat blocks × 512). Paths come
 * from the VM's record: a child that took a warm process lives in that process's directory.
 */
export async function probeChild(deps: VmDeps, sample: ChildSample): Promise<void> {
  let agent: GuestAgentClient | undefined;
  try {
    const vm = (await showVm(deps, sample.name)) as { files: { disk: string } };
    agent = await connectAgent(deps, sample.name);
    // `sync` first: identity writes sit in the guest page cache until ext4 commits them, and the overlay figure is
    // meant to include them (the worst case of "after identity", not a lucky early read)
    const r = await readGuestFacts(agent, ['boot-id'], { sync: true, timeoutMs: 60_000 });
    const bootId = r.sections.get('boot-id');
    if (!bootId) throw new VmforkError('VMFORK_AGENT_ERROR', `the guest reported no boot_id: ${r.stderr}`);
    sample.bootId = bootId;
    sample.overlayBytes = (await stat(vm.files.disk)).blocks * 512;
    // -U: QEMU holds the image locked; slightly stale metadata is fine for a size
    const map = await runQemuTool(QEMU_IMG_BINARY, ['map', '-U', '--output=json', vm.files.disk], { timeoutMs: 30_000 });
    sample.overlayDataBytes = topLayerDataBytes(JSON.parse(map.stdout) as unknown);
  } catch (err) {
    sample.probeError = (err as Error).message.split('\n')[0];
  } finally {
    agent?.close();
  }
}

/**
 * Guest data held by the overlay itself (not its backing chain), from `qemu-img map --output=json`: the extents at
 * depth 0 with data. Always whole clusters — a 4 KiB guest write allocates one (64 KiB by default) — and the rest
 * of the allocated file is qcow2 header, tables and refcounts.
 */
export function topLayerDataBytes(map: unknown): number {
  if (!Array.isArray(map)) throw new VmforkError('VMFORK_QEMU_IMG_FAILED', 'qemu-img map did not print a JSON array');
  let bytes = 0;
  for (const e of map as { depth?: unknown; data?: unknown; length?: unknown }[]) {
    if (e.depth === 0 && e.data === true && typeof e.length === 'number') bytes += e.length;
  }
  return bytes;
}

/** Reads every process's memory back to back, so the samples describe one instant of the same idle fleet. */
export async function readMemories(procs: readonly { name: string; pid: number }[], ramFile: string): Promise<MemorySample[]> {
  const out: MemorySample[] = [];
  for (const c of procs) out.push({ name: c.name, pid: c.pid, memory: await readProcessMemory(c.pid, ramFile) });
  return out;
}

/** vmfork-guest's own memory in a running child, from its smaps_rollup read in the guest (through qemu-ga). */
export async function readAgentInGuest(deps: VmDeps, name: string): Promise<ForkBenchRaw['agentInGuest']> {
  const agent = await connectAgent(deps, name);
  try {
    const r = await agent.sh('cat /proc/$(pidof vmfork-guest)/smaps_rollup', { timeoutMs: 30_000 });
    const kib = parseSmapsRollup(r.stdout.toString());
    return kib.Pss === undefined ? undefined : { rssKiB: kib.Rss ?? 0, pssKiB: kib.Pss, privateDirtyKiB: kib.Private_Dirty ?? 0 };
  } finally {
    agent.close();
  }
}
