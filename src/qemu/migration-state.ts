import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chown, rm, stat } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { VmforkError } from '../errors.js';
import type { QmpClient } from './qmp-client.js';
import type { MigrationInfo } from './qmp-types.js';

/**
 * The one place a VM's state goes into or out of QEMU (template freeze, fork, checkpoint, revert, suspend, from-vm).
 * QEMU runs under `-sandbox …,spawn=deny` (docs/security.md): it may not run `exec:cat`, and as its own uid it may
 * not open vmfork's files. So vmfork opens them:
 * - in: the state file is opened by vmfork and handed to QEMU at spawn as fd 3 (`spec.incomingState`, launchQemu);
 *   QEMU reads it at `migrate-incoming fd:3` (7.2 takes a numeric fd there).
 * - out: QEMU migrates to `unix:` a socket vmfork listens on in the VM's own directory (given to the directory's
 *   owner, the VM's uid, so QEMU may connect), and vmfork writes what arrives to the file — or passes it on to
 *   another QEMU's incoming socket (from-vm), which the first QEMU's uid could not reach.
 */
export const INCOMING_STATE_FD = 3;

export type StateSink = { file: string } | { socket: string };

export interface StateIoOptions {
  timeoutMs?: number;
  pollMs?: number;
}

/**
 * Starts the migration of the VM behind `qmp` (its QMP socket in `qmpPath`'s directory) into `sink` and waits for
 * QEMU's `completed` and for the last byte to be written. The caller sets capabilities and parameters before.
 */
export async function saveState(qmp: QmpClient, qmpPath: string, sink: StateSink, options: StateIoOptions = {}): Promise<MigrationInfo> {
  const dir = dirname(qmpPath);
  const sock = join(dir, `migrate-${randomBytes(4).toString('hex')}.sock`);
  const server = createServer();
  let drained: Promise<void> | undefined;
  server.once('connection', (conn: Socket) => {
    server.close();
    const out = 'file' in sink ? createWriteStream(sink.file, { flags: 'w' }) : connect(sink.socket);
    drained = pipeline(conn, out);
    drained.catch(() => undefined); // awaited below; a failed migration never gets that far
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(sock, () => resolve());
  });
  try {
    const owner = await stat(dir);
    await chown(sock, owner.uid, owner.gid);
    await qmp.migrate(`unix:${sock}`);
    const info = await qmp.waitForMigration({ timeoutMs: options.timeoutMs ?? 120_000, pollMs: options.pollMs ?? 5 });
    if (!drained) throw new VmforkError('VMFORK_QMP_ERROR', `QEMU reported the migration completed without connecting to ${sock}`, { details: { socketPath: sock } });
    await drained;
    return info;
  } finally {
    server.close();
    await rm(sock, { force: true });
  }
}

/** Loads the state QEMU was handed at spawn (`spec.incomingState`) and waits until it is loaded (`paused`). */
export async function loadState(qmp: QmpClient, options: StateIoOptions = {}): Promise<void> {
  await qmp.migrateIncoming(`fd:${INCOMING_STATE_FD}`);
  await qmp.waitForStatus('paused', { timeoutMs: options.timeoutMs ?? 60_000, pollMs: options.pollMs ?? 2 });
}
