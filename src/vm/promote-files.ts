import { rm } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { decodeVmSpec } from '../spec/index.js';
import { getVm, type Db } from '../store/index.js';

/** Where a promotion onto a datastore puts a VM's disks: `<datastore>/promoted/<vm>/`. */
export function promotedDir(datastorePath: string, vm: string): string {
  return resolve(datastorePath, 'promoted', vm);
}

/**
 * Removes the directories a promotion onto another datastore made for the VM's disks: they live outside the VM's
 * own directory, so its teardown asks for them by the record's disk paths (only paths of that exact shape).
 */
export async function removePromotedDisks(db: Db, vm: string): Promise<void> {
  const row = await getVm(db, vm);
  if (!row) return;
  const dirs = new Set(decodeVmSpec(row.spec_json).disks.map((d) => dirname(d.path)).filter((dir) => basename(dir) === vm && basename(dirname(dir)) === 'promoted'));
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
}
