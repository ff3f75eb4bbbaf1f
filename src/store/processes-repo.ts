import type { Db } from './db.js';
import type { NewProcess, ProcessRow } from './schema.js';

/** The process record of the VM's current QEMU (the newest one that has not exited). */
export async function currentProcess(db: Db, vmName: string): Promise<ProcessRow | undefined> {
  return db
    .selectFrom('processes')
    .selectAll()
    .where('vm_name', '=', vmName)
    .where('exited_at', 'is', null)
    .orderBy('id', 'desc')
    .executeTakeFirst();
}

export async function recordProcess(db: Db, proc: NewProcess): Promise<void> {
  await db.insertInto('processes').values(proc).execute();
}

export async function markProcessExited(db: Db, vmName: string): Promise<void> {
  await db
    .updateTable('processes')
    .set({ exited_at: new Date().toISOString() })
    .where('vm_name', '=', vmName)
    .where('exited_at', 'is', null)
    .execute();
}
