import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeVmSpec } from '../spec/index.js';
import { deleteCheckpoints, requireVm, updateVm, type CheckpointDisk } from '../store/index.js';
import type { VmDeps } from './vm-deps.js';
import { diskFile } from './vm-paths.js';

/**
 * Which file a frozen layer was when its checkpoint was cut: a refresh or a reset makes a VM's first overlays anew
 * at the same paths, and a checkpoint's RAM must never be resumed over a disk made after it.
 */
export async function layerIdentity(path: string): Promise<Pick<CheckpointDisk, 'ino' | 'birthMs'>> {
  const s = await stat(path);
  return { ino: s.ino, birthMs: Math.round(s.birthtimeMs) };
}

/** True when `disk` is still the very file its checkpoint froze (older rows, without an identity, are trusted). */
export async function sameLayer(disk: CheckpointDisk): Promise<boolean> {
  if (disk.ino === undefined) return true;
  const now = await layerIdentity(disk.path);
  return now.ino === disk.ino && (disk.birthMs === 0 || now.birthMs === disk.birthMs);
}

/**
 * Forgets a VM's checkpoints before its disks are made anew (a pool child's refresh, a persistent child's reset),
 * with its QEMU gone: the rows and their state files (the last user's RAM) are removed, and every disk in
 * `resetDisks` gets back its first path (`disk.qcow2`, `disk-<id>.qcow2`, which the caller makes anew) while its
 * layers in overlays/ are removed. Disks not reset keep their layer chain, frozen layers included.
 */
export async function forgetCheckpoints(deps: VmDeps, name: string, options: { resetDisks?: readonly string[] } = {}): Promise<string[]> {
  const vm = await requireVm(deps.db, name);
  const dropped = (await deleteCheckpoints(deps.db, name)).map((c) => c.label);
  await rm(join(vm.dir, 'checkpoints'), { recursive: true, force: true });
  const ids = new Set(options.resetDisks ?? []);
  if (!ids.size) return dropped;
  const spec = decodeVmSpec(vm.spec_json);
  const disks = spec.disks.map((d) => (ids.has(d.id) ? { ...d, path: diskFile(vm.dir, d.id) } : d));
  await updateVm(deps.db, name, { spec_json: JSON.stringify({ ...spec, disks }) });
  const overlays = join(vm.dir, 'overlays');
  for (const f of await readdir(overlays).catch(() => [] as string[])) {
    const id = /^(.+)-[0-9a-f]{8}\.qcow2$/.exec(f)?.[1];
    if (id !== undefined && ids.has(id)) await rm(join(overlays, f), { force: true });
  }
  return dropped;
}

/** Frozen disks as a checkpoint row stores them, each with the identity of its file. */
export async function frozenDisks(disks: readonly { id: string; path: string }[]): Promise<CheckpointDisk[]> {
  return Promise.all(disks.map(async (d) => ({ id: d.id, path: d.path, ...(await layerIdentity(d.path)) })));
}

