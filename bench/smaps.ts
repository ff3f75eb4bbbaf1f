import { readFile } from 'node:fs/promises';

/** One mapping of /proc/PID/smaps: its header line and its `Key: N kB` fields. */
export interface SmapsMapping {
  start: bigint;
  end: bigint;
  perms: string;
  /** Backing file, `[heap]`-style pseudo path, or '' for anonymous memory. */
  path: string;
  /** Every `Key: N kB` line, in KiB (Rss, Pss, Private_Dirty, …). */
  kib: Record<string, number>;
}

const HEADER = /^([0-9a-f]+)-([0-9a-f]+)\s+([rwxps-]{4})\s+[0-9a-f]+\s+\S+\s+\d+\s*(.*)$/;
const FIELD = /^([A-Za-z_]+):\s+(\d+) kB$/;

/** Parses /proc/PID/smaps. Lines that are neither a header nor a kB field (VmFlags, THPeligible) are skipped. */
export function parseSmaps(text: string): SmapsMapping[] {
  const out: SmapsMapping[] = [];
  let current: SmapsMapping | undefined;
  for (const line of text.split('\n')) {
    const h = HEADER.exec(line);
    if (h) {
      current = { start: BigInt(`0x${h[1]}`), end: BigInt(`0x${h[2]}`), perms: h[3] as string, path: (h[4] ?? '').trim(), kib: {} };
      out.push(current);
      continue;
    }
    const f = FIELD.exec(line);
    if (f && current) current.kib[f[1] as string] = Number(f[2]);
  }
  return out;
}

/** Parses /proc/PID/smaps_rollup: the `Key: N kB` fields of its single pseudo-mapping, in KiB. */
export function parseSmapsRollup(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const f = FIELD.exec(line);
    if (f) out[f[1] as string] = Number(f[2]);
  }
  return out;
}

/** Sums one kB field over the mappings that match. */
export function sumField(mappings: readonly SmapsMapping[], field: string, match: (m: SmapsMapping) => boolean): number {
  return mappings.filter(match).reduce((s, m) => s + (m.kib[field] ?? 0), 0);
}

/** A mapping of `file` (the kernel appends ` (deleted)` once the file is unlinked; it is still the same pages). */
export function isMappingOf(file: string): (m: SmapsMapping) => boolean {
  return (m) => m.path === file || m.path === `${file} (deleted)`;
}

/**
 * QEMU's TCG translation cache: under QEMU 7.2 (no split-wx) it is one anonymous private mapping that is both
 * writable and executable. Nothing else in a QEMU process maps anonymous memory rwx, so this is a safe signature.
 */
export function isTcgCodeBuffer(m: SmapsMapping): boolean {
  return m.path === '' && m.perms.startsWith('rwx');
}

export interface RegionMemory {
  sizeKiB: number;
  rssKiB: number;
  pssKiB: number;
  privateDirtyKiB: number;
}

export interface ProcessMemory {
  /** Whole-process figures from smaps_rollup. */
  rssKiB: number;
  pssKiB: number;
  privateDirtyKiB: number;
  /** The mapping of the template's RAM file: PSS is the child's share of it; Private_Dirty is its copy-on-write. */
  guestRam: RegionMemory;
  tcgCache: RegionMemory;
}

function region(mappings: readonly SmapsMapping[], match: (m: SmapsMapping) => boolean): RegionMemory {
  return {
    sizeKiB: sumField(mappings, 'Size', match),
    rssKiB: sumField(mappings, 'Rss', match),
    pssKiB: sumField(mappings, 'Pss', match),
    privateDirtyKiB: sumField(mappings, 'Private_Dirty', match),
  };
}

/** Pure: a process's memory from the texts of its smaps_rollup and smaps. */
export function processMemoryOf(rollupText: string, smapsText: string, ramFile: string): ProcessMemory {
  const rollup = parseSmapsRollup(rollupText);
  const maps = parseSmaps(smapsText);
  return {
    rssKiB: rollup.Rss ?? 0,
    pssKiB: rollup.Pss ?? 0,
    privateDirtyKiB: rollup.Private_Dirty ?? 0,
    guestRam: region(maps, isMappingOf(ramFile)),
    tcgCache: region(maps, isTcgCodeBuffer),
  };
}

/** Reads a live process's memory. The rollup and the per-mapping file are read back to back (same instant, near enough). */
export async function readProcessMemory(pid: number, ramFile: string): Promise<ProcessMemory> {
  const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
  const smaps = await readFile(`/proc/${pid}/smaps`, 'utf8');
  return processMemoryOf(rollup, smaps, ramFile);
}
