import { stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { applySharedMode, type SharedKind } from '../config/index.js';
import { VmforkError } from '../errors.js';
import { sha256File } from '../util/index.js';
import { diskFile } from '../vm/index.js';

/** Where a template's files live: its parent's disk overlays (by device id), the RAM file and the device state. */
export interface TemplateFiles {
  dir: string;
  /** The system disk (`disk0`). */
  disk: string;
  ram: string;
  state: string;
  /** Any disk by device id: `disk0` is `disk`, others `disk-<id>.qcow2`. */
  diskFor(id: string): string;
}

export function templateFiles(templatesDir: string, name: string): TemplateFiles {
  const dir = join(templatesDir, name);
  return { dir, disk: diskFile(dir, 'disk0'), ram: join(dir, 'ram'), state: join(dir, 'state'), diskFor: (id) => diskFile(dir, id) };
}

/** One immutable template file as recorded when the template was frozen. */
export interface FileRecord {
  path: string;
  sha256: string;
  size: number;
  /** stat facts at hashing time: while they are unchanged the content is too (any write moves ctime). */
  ino: number;
  mtimeMs: number;
  ctimeMs: number;
}

/**
 * Makes the file read-only (its kind's sealed mode: src/config/private-files.ts), then hashes it (in that order:
 * ctime then stays put).
 */
export async function sealFile(path: string, kind: Extract<SharedKind, 'template-file' | 'replica-disk'> = 'template-file'): Promise<FileRecord> {
  await applySharedMode(path, kind);
  // the template's parent QEMU owned its directory while it ran; from now on every child's QEMU passes through it
  await applySharedMode(dirname(path), kind, 'dir');
  const sha256 = await sha256File(path);
  const s = await stat(path);
  return { path, sha256, size: s.size, ino: s.ino, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs };
}

export type FileCheck = { ok: true; rehashed: boolean } | { ok: false; problem: string };

/**
 * Checks a sealed file before a fork. Hashing a 512 MiB RAM file costs seconds, so the full sha256 is computed
 * only when the stat facts moved (a write, chmod, replace or touch all change ctime or the inode); otherwise the
 * recorded hash still holds. `full: true` always rehashes (`vmfork template verify`).
 */
export async function checkFile(rec: FileRecord, options: { full?: boolean } = {}): Promise<FileCheck> {
  let s;
  try {
    s = await stat(rec.path);
  } catch {
    return { ok: false, problem: `${rec.path} is missing` };
  }
  if (s.size !== rec.size) return { ok: false, problem: `${rec.path} is ${s.size} bytes, recorded ${rec.size}` };
  const unchanged = s.ino === rec.ino && s.mtimeMs === rec.mtimeMs && s.ctimeMs === rec.ctimeMs;
  if (unchanged && !options.full) return { ok: true, rehashed: false };
  const sha = await sha256File(rec.path);
  if (sha !== rec.sha256) return { ok: false, problem: `${rec.path} sha256 ${sha.slice(0, 12)}… ≠ recorded ${rec.sha256.slice(0, 12)}…` };
  return { ok: true, rehashed: true };
}

/** Throws VMFORK_TEMPLATE_CORRUPT listing every file that is missing or changed. */
export async function assertFilesIntact(template: string, files: readonly (readonly [string, FileRecord])[], options: { full?: boolean } = {}): Promise<void> {
  const problems: string[] = [];
  for (const [role, rec] of files) {
    const r = await checkFile(rec, options);
    if (!r.ok) problems.push(`${role}: ${r.problem}`);
  }
  if (problems.length) {
    throw new VmforkError('VMFORK_TEMPLATE_CORRUPT', `template ${template}: ${problems.join('; ')}`, { details: { template, problems } });
  }
}
