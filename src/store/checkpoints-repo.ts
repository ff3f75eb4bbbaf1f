import type { Insertable, Selectable } from 'kysely';
import { VmforkError } from '../errors.js';
import { isUniqueViolation, type Db } from './db.js';

/** A disk as a checkpoint froze it: the device id and the image file that was the VM's active layer at the cut. */
export interface CheckpointDisk {
  id: string;
  path: string;
  /** The file's inode and birth time at the cut: a layer made anew at the same path is not this checkpoint's. */
  ino?: number;
  birthMs?: number;
}

/** One checkpoint of a VM (migration 010). */
export interface CheckpointsTable {
  vm_name: string;
  label: string;
  /** 1 when the device and RAM state were saved (`state_path`), 0 for a disk-only checkpoint. */
  memory: number;
  state_path: string | null;
  /** CheckpointDisk[] as JSON: the frozen disks, all cut at the same stopped instant as the state. */
  disks_json: string;
  created_at: string;
}

export type CheckpointRow = Selectable<CheckpointsTable>;

// the table is typed here rather than in schema.ts: one room's table, read only through this repo
const table = (db: Db) => db.withTables<{ checkpoints: CheckpointsTable }>();

/** Records a complete checkpoint; a label the VM already has is VMFORK_CHECKPOINT_EXISTS. */
export async function insertCheckpoint(db: Db, row: Insertable<CheckpointsTable>): Promise<void> {
  try {
    await table(db).insertInto('checkpoints').values(row).execute();
  } catch (err) {
    if (isUniqueViolation(err)) {
      throw new VmforkError('VMFORK_CHECKPOINT_EXISTS', `VM ${row.vm_name} already has a checkpoint labelled "${row.label}"`, { cause: err, details: { vm: row.vm_name, label: row.label } });
    }
    throw err;
  }
}

export async function getCheckpoint(db: Db, vm: string, label: string): Promise<CheckpointRow | undefined> {
  return table(db).selectFrom('checkpoints').selectAll().where('vm_name', '=', vm).where('label', '=', label).executeTakeFirst();
}

/** A VM's checkpoints, oldest first. */
export async function listCheckpoints(db: Db, vm: string): Promise<CheckpointRow[]> {
  return table(db).selectFrom('checkpoints').selectAll().where('vm_name', '=', vm).orderBy('created_at').orderBy('label').execute();
}

/** Removes a VM's checkpoint rows (its files are the caller's), returning them. */
export async function deleteCheckpoints(db: Db, vm: string): Promise<CheckpointRow[]> {
  const rows = await listCheckpoints(db, vm);
  await table(db).deleteFrom('checkpoints').where('vm_name', '=', vm).execute();
  return rows;
}

/** Removes one checkpoint row (its files are the caller's); false when there was none. */
export async function deleteCheckpoint(db: Db, vm: string, label: string): Promise<boolean> {
  const r = await table(db).deleteFrom('checkpoints').where('vm_name', '=', vm).where('label', '=', label).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

export function checkpointDisks(row: CheckpointRow): CheckpointDisk[] {
  return JSON.parse(row.disks_json) as CheckpointDisk[];
}
