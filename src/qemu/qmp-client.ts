import type { Socket } from 'node:net';
import { VmforkError, isVmforkError } from '../errors.js';
import { waitUntil } from '../util/index.js';
import { connectUnixSocket } from './json-line-stream.js';
import { QmpConnection, type CommandOptions, type QmpConnectOptions } from './qmp-connection.js';
import type { MigrationCapability, MigrationInfo, PollOptions, RxFilterInfo, StatusInfo } from './qmp-types.js';

export { QmpCommandError, type CommandOptions, type QmpConnectOptions } from './qmp-connection.js';
export type * from './qmp-types.js';

/**
 * QMP client for one QEMU process: `QmpClient.connect()` plus the commands the fork engine uses. Any other
 * command goes through `execute()`.
 */
export class QmpClient extends QmpConnection {
  /**
   * Connects, reads the greeting and negotiates capabilities. A missing or dead socket is VMFORK_QMP_UNAVAILABLE;
   * a peer that does not speak QMP is VMFORK_QMP_PROTOCOL; no greeting in time is VMFORK_QMP_TIMEOUT.
   */
  static async connect(socketPath: string, options: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = options.connectTimeoutMs ?? 5_000;
    const deadline = Date.now() + timeoutMs;
    let socket: Socket;
    try {
      socket = await connectUnixSocket(socketPath, timeoutMs);
    } catch (err) {
      throw new VmforkError('VMFORK_QMP_UNAVAILABLE', `cannot connect to ${socketPath}: ${(err as Error).message}`, {
        cause: err,
        details: { socketPath },
      });
    }
    const client = new QmpClient(socket, socketPath, options);
    try {
      await client.handshake(deadline);
      return client;
    } catch (err) {
      client.close();
      throw err;
    }
  }

  async queryStatus(options?: CommandOptions): Promise<StatusInfo> {
    const info = await this.execute<StatusInfo>('query-status', undefined, options);
    return { status: info.status, running: info.running };
  }

  async stop(options?: CommandOptions): Promise<void> {
    await this.execute('stop', undefined, options);
  }

  async cont(options?: CommandOptions): Promise<void> {
    await this.execute('cont', undefined, options);
  }

  /** Asks QEMU to exit. Resolves on its reply or when it closes the socket first (both mean it is going away). */
  async quit(options?: CommandOptions): Promise<void> {
    if (this.closed) throw new VmforkError('VMFORK_QMP_UNAVAILABLE', `quit: QMP connection to ${this.socketPath} is closed`);
    try {
      await this.execute('quit', undefined, options);
    } catch (err) {
      if (!(isVmforkError(err) && err.code === 'VMFORK_QMP_UNAVAILABLE')) throw err;
    }
  }

  async migrateSetCapabilities(capabilities: MigrationCapability[], options?: CommandOptions): Promise<void> {
    await this.execute('migrate-set-capabilities', { capabilities }, options);
  }

  async migrate(uri: string, options?: CommandOptions): Promise<void> {
    await this.execute('migrate', { uri }, options);
  }

  async migrateIncoming(uri: string, options?: CommandOptions): Promise<void> {
    await this.execute('migrate-incoming', { uri }, options);
  }

  queryMigrate(options?: CommandOptions): Promise<MigrationInfo> {
    return this.execute<MigrationInfo>('query-migrate', undefined, options);
  }

  /** Polls query-migrate until `completed`; `failed`/`cancelled` → VMFORK_QMP_ERROR with QEMU's error-desc. */
  waitForMigration(options: PollOptions = {}): Promise<MigrationInfo> {
    return this.poll('migration to complete', options, async (timeoutMs) => {
      const info = await this.queryMigrate({ timeoutMs });
      if (info.status === 'completed') return info;
      if (info.status === 'failed' || info.status === 'cancelled') {
        const desc = info['error-desc'] ?? 'no error-desc given';
        throw new VmforkError('VMFORK_QMP_ERROR', `migration ${info.status}: ${desc}`, {
          details: { command: 'query-migrate', status: info.status, desc },
        });
      }
      return undefined;
    });
  }

  /** Polls query-status until the run state is `status` (e.g. `paused` once an incoming migration has loaded). */
  waitForStatus(status: string, options: PollOptions = {}): Promise<StatusInfo> {
    return this.poll(`run state ${status}`, options, async (timeoutMs) => {
      const info = await this.queryStatus({ timeoutMs });
      return info.status === status ? info : undefined;
    });
  }

  /** query-rx-filter: the MAC and filters the guest driver programmed (one NIC with `name`, else all). */
  queryRxFilter(name?: string, options?: CommandOptions): Promise<RxFilterInfo[]> {
    return this.execute<RxFilterInfo[]>('query-rx-filter', name === undefined ? undefined : { name }, options);
  }

  private async poll<T>(what: string, options: PollOptions, probe: (timeoutMs: number) => Promise<T | undefined>): Promise<T> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    return waitUntil(() => probe(Math.max(1, deadline - Date.now())), { deadlineMs: timeoutMs, everyMs: options.pollMs ?? 10, what }).catch((err: unknown) => {
      if (!(isVmforkError(err) && err.code === 'VMFORK_TIMEOUT')) throw err;
      throw new VmforkError('VMFORK_QMP_TIMEOUT', `waited ${timeoutMs} ms for ${what}`, { details: { socketPath: this.socketPath } });
    });
  }
}
