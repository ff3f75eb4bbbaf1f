import { rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { listDatastores, type Db } from '../store/index.js';

/** Where a promotion onto a datastore puts a VM's disks: `<datastore>/promoted/<vm>/`. */
export function promotedDir(datastorePath: string, vm: string): string {
  return resolve(datastorePath, 'promoted', vm);
}

/**
 * Removes what promotions onto other datastores made for the VM: those directories live outside the VM's own.
 * Every datastore's is looked for, recorded or not — a promotion cut short before its pivot was recorded leaves its
 * half-written target there — and a VM name is the data dir's, so `promoted/<vm>` is this VM's alone.
 */
export async function removePromotedDisks(db: Db, vm: string): Promise<void> {
  for (const ds of await listDatastores(db)) await rm(promotedDir(ds.path, vm), { recursive: true, force: true });
}
