import { constants } from 'node:fs';
import { copyFile, rm } from 'node:fs/promises';
import { VmforkError } from '../errors.js';
import { QmpClient, saveState, type LaunchedProcess } from '../qemu/index.js';

/** A disk of the running child: its device id and the file QEMU writes (its overlay on the old template's disk). */
export interface MovedDisk {
  id: string;
  from: string;
  to: string;
}

export interface MoveChildOptions {
  childQmp: string;
  disks: readonly MovedDisk[];
  /** Starts the new template's parent (at `-incoming defer`, on the copied disks) and returns its QMP socket. */
  launchParent(): Promise<{ qmp: string; process: LaunchedProcess }>;
  /** Where the parent listens for the child's migration stream (a unix socket in the new template's directory). */
  streamSocket: string;
  timeoutMs?: number;
}

/** Where the child's standstill went: copying its disks, starting the parent, moving RAM and device state. */
export interface MoveSteps {
  copyMs: number;
  launchMs: number;
  migrateMs: number;
}

/** Move a child's RAM at the speed the host allows: QEMU's default cap (32 MiB/s) is meant for a network link. */
const UNCAPPED_BYTES_PER_SECOND = 64 * 1024 ** 3;

interface MigrationParameters {
  'max-bandwidth'?: number;
}

/**
 * Moves a running child's exact state into a new template's parent without losing the child. A child maps its
 * template's RAM file MAP_PRIVATE, so its memory is nowhere on disk: it is moved whole. With the child's CPUs
 * stopped (`stop` also flushes its disks): its disk overlays are copied as they are at that instant (each still
 * backed by the old template's disk), the parent starts on the copies with its own RAM file (share=on), and the
 * child migrates RAM and device state to it over a unix socket — with x-ignore-shared OFF on both sides (the child
 * set it for its own fork; its RAM is private, and the two ends must agree on the capability or the stream is
 * misread). Then `cont`: the child runs on from the same instruction (QEMU re-activates the disks a completed
 * migration handed over). On any failure the child is continued too. The parent is left `paused` with the child's
 * state loaded; it has never run.
 */
export async function moveChildState(options: MoveChildOptions): Promise<{ pausedMs: number; steps: MoveSteps; parent: LaunchedProcess }> {
  const timeoutMs = options.timeoutMs ?? 300_000;
  const child = await QmpClient.connect(options.childQmp, { connectTimeoutMs: 10_000 });
  let stoppedAt: number | undefined;
  let parentQmp: QmpClient | undefined;
  try {
    await assertPlainOverlays(child, options.disks);
    const before = await child.execute<MigrationParameters>('query-migrate-parameters');
    stoppedAt = performance.now();
    const since = (t: number): number => Math.round(performance.now() - t);
    await child.stop();
    for (const d of options.disks) await copyDisk(d.from, d.to);
    const copyMs = since(stoppedAt);
    const t1 = performance.now();
    const { qmp, process } = await options.launchParent();
    parentQmp = await QmpClient.connect(qmp, { connectTimeoutMs: 30_000 });
    await parentQmp.migrateSetCapabilities([{ capability: 'x-ignore-shared', state: false }]);
    await rm(options.streamSocket, { force: true });
    await parentQmp.migrateIncoming(`unix:${options.streamSocket}`);
    const launchMs = since(t1);
    const t2 = performance.now();
    await child.migrateSetCapabilities([{ capability: 'x-ignore-shared', state: false }]);
    await child.execute('migrate-set-parameters', { 'max-bandwidth': UNCAPPED_BYTES_PER_SECOND });
    // relayed by vmfork (migration-state.ts): the child's uid may not reach the parent's socket
    await saveState(child, options.childQmp, { socket: options.streamSocket }, { timeoutMs, pollMs: 20 });
    await parentQmp.waitForStatus('paused', { timeoutMs, pollMs: 20 });
    const migrateMs = since(t2);
    // the child as it was: its fork's capability and its bandwidth cap, then on from the same instruction
    await child.migrateSetCapabilities([{ capability: 'x-ignore-shared', state: true }]);
    if (before['max-bandwidth'] !== undefined) await child.execute('migrate-set-parameters', { 'max-bandwidth': before['max-bandwidth'] });
    await child.cont();
    const pausedMs = performance.now() - stoppedAt;
    stoppedAt = undefined;
    return { pausedMs: Math.round(pausedMs), steps: { copyMs, launchMs, migrateMs }, parent: process };
  } finally {
    parentQmp?.close();
    await rm(options.streamSocket, { force: true });
    // a failure while the child stood still: it runs on (a migration cut short is cancelled first)
    if (stoppedAt !== undefined) {
      await child.execute('migrate_cancel').catch(() => undefined);
      await child.cont().catch(() => undefined);
    }
    child.close();
  }
}

interface BlockInfo {
  device: string;
  inserted?: { file: string };
}

/**
 * The child's disks must be its plain overlays (one layer over the old template's disks): a checkpointed child
 * writes to a newer layer in its own directory, which a copy of the overlay would miss and which goes when the
 * child does.
 */
async function assertPlainOverlays(qmp: QmpClient, disks: readonly MovedDisk[]): Promise<void> {
  const blocks = await qmp.execute<BlockInfo[]>('query-block');
  const layered = disks.filter((d) => blocks.find((b) => b.device === d.id)?.inserted?.file !== d.from);
  if (layered.length) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `the VM writes disk(s) ${layered.map((d) => d.id).join(', ')} to a layer above its overlay (a checkpoint): revert or promote it first`, {
      details: { disks: layered.map((d) => ({ id: d.id, active: blocks.find((b) => b.device === d.id)?.inserted?.file ?? null, overlay: d.from })) },
    });
  }
}

/** A reflink where the file system has them, else a copy; the qcow2 keeps its backing reference (an absolute path). */
async function copyDisk(from: string, to: string): Promise<void> {
  await copyFile(from, to, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
}
