import { randomBytes } from 'node:crypto';
import { chown, rm, stat } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import { VmforkError } from '../errors.js';
import { waitUntil } from '../util/index.js';
import { loadState } from './migration-state.js';
import { QmpClient } from './qmp-client.js';

/**
 * A child's memory pulled on demand from another host (issue 14 item 8, QEMU's postcopy migration; read QEMU's
 * docs/devel/migration.rst). The source is a QEMU that loaded the template's frozen state and stays paused
 * (src/fork/serve.ts); the destination is the child, started with anonymous RAM and `-incoming defer`. Both set
 * `postcopy-ram` before the migration starts. The source switches to postcopy at once (`migrate-start-postcopy`
 * right after `migrate`): the device state crosses, the child runs, the pages it touches are fetched as it faults
 * on them (userfaultfd), and the rest follow in the background. Until `completed` the child needs its source.
 *
 * Neither QEMU touches the network between hosts: each migrates through a unix socket in its own directory, and the
 * agents join the two sockets over TLS (src/host-agent/psk-link.ts). The stream carries the guest's RAM.
 */
const POSTCOPY = [{ capability: 'postcopy-ram', state: true }];

/**
 * Source side, before anyone connects: loads the template's state (handed at spawn, `x-ignore-shared` as it was
 * saved), leaves the QEMU paused, and sets it up to send every page (`x-ignore-shared` off: the RAM is in no file
 * on the other host) by postcopy.
 */
export async function loadForServing(qmpPath: string, options: { timeoutMs?: number } = {}): Promise<void> {
  const qmp = await QmpClient.connect(qmpPath, { connectTimeoutMs: 10_000 });
  try {
    await qmp.migrateSetCapabilities([{ capability: 'x-ignore-shared', state: true }]);
    await loadState(qmp, { timeoutMs: options.timeoutMs ?? 60_000, pollMs: 5 });
    await qmp.migrateSetCapabilities([{ capability: 'x-ignore-shared', state: false }, ...POSTCOPY]);
  } finally {
    qmp.close();
  }
}

/** Both ways between two streams; either end closing or failing ends both. Resolves when both are closed. */
export function splice(a: Duplex, b: Duplex): Promise<void> {
  a.pipe(b);
  b.pipe(a);
  const closed = (s: Duplex): Promise<void> => new Promise((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));
  const fail = (): void => {
    a.destroy();
    b.destroy();
  };
  a.once('error', fail);
  b.once('error', fail);
  return Promise.all([closed(a), closed(b)]).then(() => undefined);
}

/**
 * Source side: migrates the loaded state into `peer` (a stream that reaches the destination QEMU's incoming
 * socket), switches to postcopy at once and waits until the last page has crossed.
 */
export async function sendPostcopy(qmpPath: string, peer: Duplex, options: { timeoutMs?: number } = {}): Promise<void> {
  const dir = dirname(qmpPath);
  const sock = join(dir, `postcopy-${randomBytes(4).toString('hex')}.sock`);
  const server = createServer();
  let joined: Promise<void> | undefined;
  let qemuEnd: Socket | undefined;
  server.once('connection', (conn: Socket) => {
    server.close();
    qemuEnd = conn;
    joined = splice(conn, peer);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(sock, () => resolve());
  });
  const qmp = await QmpClient.connect(qmpPath, { connectTimeoutMs: 10_000 });
  try {
    const owner = await stat(dir);
    await chown(sock, owner.uid, owner.gid);
    await qmp.migrate(`unix:${sock}`);
    await qmp.execute('migrate-start-postcopy');
    await qmp.waitForMigration({ timeoutMs: options.timeoutMs ?? 10 * 60_000, pollMs: 50 });
  } finally {
    qmp.close();
    server.close();
    // both ends: the stream is over (or failed) whatever the far side still holds open
    peer.destroy();
    qemuEnd?.destroy();
    await joined?.catch(() => undefined);
    await rm(sock, { force: true });
  }
}

export interface PostcopyMarks {
  /** The device state crossed and the child runs (or was left paused, then `cont`). */
  running?(): void;
}

/**
 * Destination side: the child's QEMU (anonymous RAM, `-incoming defer`) listens on a unix socket in its directory;
 * `connect` is given a stream to it and joins it to the source. Returns once the child runs; the pages keep
 * coming afterwards (waitPostcopyDone). The returned promise `joined` settles when the stream ends.
 */
export async function receivePostcopy(qmpPath: string, connect_: () => Promise<Duplex>, marks: PostcopyMarks = {}, options: { timeoutMs?: number } = {}): Promise<{ joined: Promise<void> }> {
  const sock = join(dirname(qmpPath), `incoming-${randomBytes(4).toString('hex')}.sock`);
  const qmp = await QmpClient.connect(qmpPath, { connectTimeoutMs: 10_000 });
  try {
    await qmp.migrateSetCapabilities(POSTCOPY);
    await qmp.migrateIncoming(`unix:${sock}`);
    const local = await new Promise<Socket>((resolve, reject) => {
      const s = connect(sock, () => resolve(s));
      s.once('error', reject);
    });
    let peer: Duplex;
    try {
      peer = await connect_();
    } catch (err) {
      local.destroy();
      throw err;
    }
    const joined = splice(local, peer);
    joined.catch(() => undefined);
    // autostart: a postcopy destination runs as soon as the device state is in; one left paused is continued
    const status = await waitUntil(
      async () => {
        const s = (await qmp.queryStatus()).status;
        if (s === 'running' || s === 'paused') return s;
        const m = await qmp.queryMigrate();
        if (m.status === 'failed' || m.status === 'cancelled') {
          throw new VmforkError('VMFORK_QMP_ERROR', `the child's postcopy migration ${m.status}: ${m['error-desc'] ?? 'no error-desc given'}`, { details: { status: m.status } });
        }
        return undefined;
      },
      { deadlineMs: options.timeoutMs ?? 120_000, everyMs: 10, what: 'the child to run on its postcopy state' },
    );
    if (status === 'paused') await qmp.cont();
    marks.running?.();
    return { joined };
  } finally {
    qmp.close();
    await rm(sock, { force: true }).catch(() => undefined);
  }
}

/**
 * Destination side: waits until every page has arrived (the incoming migration `completed`). The stream broken
 * first (its source or either agent gone) leaves QEMU `postcopy-paused`, the guest stalled on its missing pages:
 * that is an error at once, not a wait (vmfork does not resume a postcopy; the caller destroys the child).
 */
export async function waitPostcopyDone(qmpPath: string, options: { timeoutMs?: number } = {}): Promise<void> {
  const qmp = await QmpClient.connect(qmpPath, { connectTimeoutMs: 10_000 });
  try {
    await waitUntil(
      async () => {
        const m = await qmp.queryMigrate();
        if (m.status === 'completed') return true;
        if (m.status === 'postcopy-paused' || m.status === 'failed' || m.status === 'cancelled') {
          throw new VmforkError('VMFORK_QMP_ERROR', `the child's memory stream broke before its last page (${m.status}): its source is gone`, { details: { status: m.status } });
        }
        return undefined;
      },
      { deadlineMs: options.timeoutMs ?? 10 * 60_000, everyMs: 100, what: "the child's last page" },
    );
  } finally {
    qmp.close();
  }
}
