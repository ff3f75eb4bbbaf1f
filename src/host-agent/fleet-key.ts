import { createHmac } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { VmforkError } from '../errors.js';

/**
 * The fleet's key: one secret file, the same on every host (like a cluster's gossip key), given to each agent with
 * `--fleet-key-file`. It never travels: the key of each disk export is derived from it and the export's id (which
 * travels in the job, in clear), so the store, the jobs and the argv never hold a key (docs/jobs.md).
 */
export async function readFleetKey(path: string): Promise<Buffer> {
  let s;
  try {
    s = await stat(path);
  } catch (err) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `--fleet-key-file ${path}: ${(err as Error).message}`, { cause: err, details: { field: 'fleet-key-file' } });
  }
  if ((s.mode & 0o077) !== 0) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `--fleet-key-file ${path} is readable by group or others (mode ${(s.mode & 0o777).toString(8)}): chmod 600 it`, { details: { field: 'fleet-key-file' } });
  }
  const key = Buffer.from((await readFile(path, 'utf8')).trim(), 'utf8');
  if (key.length < 32) throw new VmforkError('VMFORK_INVALID_ARGUMENT', `--fleet-key-file ${path} holds ${key.length} bytes: give at least 32 (e.g. openssl rand -hex 32)`, { details: { field: 'fleet-key-file' } });
  return key;
}

/** The TLS pre-shared key of one export, as hex: both ends compute it, neither sends it. */
export function exportKey(fleetKey: Buffer, exportId: string): string {
  return createHmac('sha256', fleetKey).update(`vmfork nbd export ${exportId}`).digest('hex');
}
