import { stat } from 'node:fs/promises';
import type { ForkedChild } from '../src/fork/fork-child.js';
import { GuestAgentClient } from '../src/qemu/guest-agent-client.js';
import type { VmDeps } from '../src/vm/vm-deps.js';
import { vmPaths } from '../src/vm/vm-paths.js';
import type { ChildSample, MemorySample } from './fork-result.js';
import { readProcessMemory } from './smaps.js';

/** The raw sample of a forked child as the engine reported it; probes fill in the rest later. */
export function childSample(c: ForkedChild): ChildSample {
  return {
    name: c.name,
    pid: c.pid,
    timings: c.timings,
    identityTotalMs: c.identity.report.totalMs,
    identitySteps: c.identity.report.steps.map((s) => ({ step: s.step, ok: s.ok, ...(s.ms !== undefined ? { ms: s.ms } : {}) })),
  };
}

// `sync` first: identity writes sit in the guest page cache until ext4 commits them, and the overlay figure is
// meant to include them (the worst case of "after identity", not a lucky early read).
const PROBE_SCRIPT = 'sync; cat /proc/sys/kernel/random/boot_id';

/** Reads the child's boot_id from the guest, then the allocated size of its overlay (stat blocks × 512). */
export async function probeChild(deps: VmDeps, sample: ChildSample): Promise<void> {
  const paths = vmPaths(deps.home.vms, sample.name);
  let agent: GuestAgentClient | undefined;
  try {
    agent = await GuestAgentClient.connect(paths.agent, { timeoutMs: 5_000 });
    const r = await agent.sh(PROBE_SCRIPT, { timeoutMs: 60_000 });
    const bootId = r.stdout.toString().trim();
    if (r.exitCode !== 0 || !bootId) throw new Error(`probe exited ${r.exitCode}: ${r.stderr.toString().trim()}`);
    sample.bootId = bootId;
    sample.overlayBytes = (await stat(paths.disk)).blocks * 512;
  } catch (err) {
    sample.probeError = (err as Error).message.split('\n')[0];
  } finally {
    agent?.close();
  }
}

/** Reads every child's memory back to back, so the samples describe one instant of the same idle fleet. */
export async function readChildrenMemory(children: readonly ChildSample[], ramFile: string): Promise<MemorySample[]> {
  const out: MemorySample[] = [];
  for (const c of children) out.push({ name: c.name, pid: c.pid, memory: await readProcessMemory(c.pid, ramFile) });
  return out;
}
