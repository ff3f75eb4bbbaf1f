import { randomInt } from 'node:crypto';
import type { Socket } from 'node:net';
import { VmforkError, isVmforkError } from '../errors.js';
import { SerialQueue, parseReply, sleep, type Reply } from './command-queue.js';
import { guestExec, guestReadFile, guestWriteFile, type ExecOptions, type ExecResult, type FileOptions } from './guest-agent-ops.js';
import { GUEST_AGENT_MAX_LINE_BYTES, JsonLineDecoder, SILENT_LOGGER, connectUnixSocket, encodeJsonLine, isObject, type ProtocolLogger } from './json-line-stream.js';
import { JunkGuard } from './junk-guard.js';

import { GuestAgentCommandError, type AgentCallOptions, type AgentConnectOptions, type AgentInfo, type WaitReadyOptions } from './guest-agent-types.js';

export type { ExecOptions, ExecResult, FileOptions } from './guest-agent-ops.js';
export { GuestAgentCommandError, type AgentCallOptions, type AgentConnectOptions, type AgentInfo, type WaitReadyOptions } from './guest-agent-types.js';

const SENTINEL = Buffer.from([0xff]);
const RETRY_CONNECT_MS = 100;
/**
 * Unsolicited replies kept for the next read. With one command in flight, the inbox holds at most the reply that
 * came before its reader and the stale replies of timed-out commands (cleared by each resync); more is a guest
 * writing replies nobody asked for, and the oldest go (each one counted as junk).
 */
const INBOX_MAX_REPLIES = 8;

/**
 * Client for qemu-ga behind QEMU's virtio-serial chardev socket. The agent has no greeting and no request ids:
 * replies come in order, so one command is in flight at a time, and the stream is resynchronised with
 * 0xFF + guest-sync-delimited before the first command and after any timeout (a late reply would otherwise be
 * taken as the answer to the next command).
 */
export class GuestAgentClient {
  private readonly decoder: JsonLineDecoder;
  private readonly junk: JunkGuard;
  private readonly maxLineBytes: number;
  private readonly queue = new SerialQueue();
  private readonly logger: ProtocolLogger;
  private readonly commandTimeoutMs: number;
  private inbox: { reply: Reply; bytes: number }[] = [];
  private waiter: { resolve(reply: Reply): void; reject(err: VmforkError): void } | undefined;
  private needsSync = true;
  private closedReason: VmforkError | undefined;

  private constructor(
    private readonly socket: Socket,
    readonly socketPath: string,
    options: Omit<AgentConnectOptions, 'timeoutMs'>,
  ) {
    this.logger = options.logger ?? SILENT_LOGGER;
    this.commandTimeoutMs = options.commandTimeoutMs ?? 10_000;
    this.maxLineBytes = options.maxLineBytes ?? GUEST_AGENT_MAX_LINE_BYTES;
    this.decoder = new JsonLineDecoder({ sentinel: true, maxLineBytes: this.maxLineBytes });
    this.junk = new JunkGuard(this.logger, { socketPath }, options);
    socket.on('data', (chunk: Buffer) => this.handleData(chunk));
    socket.on('error', (err) => this.logger.debug({ err, socketPath }, 'guest agent socket error'));
    socket.on('close', () => this.markClosed(`guest agent socket ${socketPath} closed`));
  }

  /** Connects only; the first command syncs. Missing socket or nothing listening → VMFORK_AGENT_UNAVAILABLE. */
  static async connect(socketPath: string, options: AgentConnectOptions = {}): Promise<GuestAgentClient> {
    try {
      return new GuestAgentClient(await connectUnixSocket(socketPath, options.timeoutMs ?? 5_000), socketPath, options);
    } catch (err) {
      throw new VmforkError('VMFORK_AGENT_UNAVAILABLE', `cannot connect to ${socketPath}: ${(err as Error).message}`, {
        cause: err,
        details: { socketPath },
      });
    }
  }

  /**
   * Connects, syncs and pings until the agent answers (a booting guest starts qemu-ga late). At the deadline:
   * VMFORK_AGENT_UNAVAILABLE if the socket never accepted a connection, else VMFORK_AGENT_TIMEOUT.
   */
  static async waitReady(socketPath: string, options: WaitReadyOptions): Promise<GuestAgentClient> {
    const deadline = Date.now() + options.timeoutMs;
    // each failed attempt waits twice as long as the one before (up to 8 s): a guest on a busy host can take seconds
    // to answer, and one that always answers after the fixed attempt time would never be reached
    let attempt = 0;
    const attemptMs = (): number => Math.min((options.attemptTimeoutMs ?? 1_000) * 2 ** Math.min(attempt, 3), deadline - Date.now());
    let client: GuestAgentClient | undefined;
    let connected = false;
    let lastError: unknown;
    const { signal } = options;
    // a cancel closes the attempt in flight (its sync or ping fails at once) and ends the wait with the signal's reason
    const onAbort = (): void => client?.close();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      while (attemptMs() > 0) {
        try {
          client ??= await GuestAgentClient.connect(socketPath, { ...options, timeoutMs: attemptMs() });
          connected = true;
          signal?.throwIfAborted();
          await client.sync({ timeoutMs: attemptMs() });
          await client.ping({ timeoutMs: Math.max(1, attemptMs()) });
          return client;
        } catch (err) {
          if (signal?.aborted || (isVmforkError(err) && err.code === 'VMFORK_AGENT_ERROR')) {
            client?.close(); // cancelled, or the agent answered with an error: waiting longer will not help
            throw signal?.aborted ? signal.reason : err;
          }
          lastError = err;
          attempt++;
          if (client?.closed) client = undefined; // QEMU went away (or restarted): connect again
          if (!client) await sleep(Math.max(0, Math.min(RETRY_CONNECT_MS, deadline - Date.now())), signal);
        }
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    client?.close();
    const code = connected ? 'VMFORK_AGENT_TIMEOUT' : 'VMFORK_AGENT_UNAVAILABLE';
    const what = connected ? 'guest agent did not answer' : 'guest agent socket never accepted a connection';
    throw new VmforkError(code, `${what} within ${options.timeoutMs} ms (${socketPath})`, { cause: lastError, details: { socketPath } });
  }

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  /** Resynchronises the stream now (done automatically before the first command and after a timeout). */
  sync(options: AgentCallOptions = {}): Promise<void> {
    return this.enqueue('guest-sync-delimited', options, async () => undefined, true);
  }

  /** Sends one command and resolves with its `return` value. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, options: AgentCallOptions = {}): Promise<T> {
    return this.enqueue(command, options, async (signal) => {
      await this.send(command, args, signal);
      const reply = await this.nextReply(signal);
      this.junk.good();
      if (!reply.ok) throw new GuestAgentCommandError(command, reply.errorClass, reply.desc);
      return reply.value as T;
    });
  }

  async ping(options?: AgentCallOptions): Promise<void> {
    await this.execute('guest-ping', undefined, options);
  }

  info(options?: AgentCallOptions): Promise<AgentInfo> {
    return this.execute<AgentInfo>('guest-info', undefined, options);
  }

  exec(path: string, args: readonly string[] = [], options?: ExecOptions): Promise<ExecResult> {
    return guestExec(this, path, args, options);
  }

  /** Runs `script` with /bin/sh -c in the guest. */
  sh(script: string, options?: Omit<ExecOptions, 'env'>): Promise<ExecResult> {
    return guestExec(this, '/bin/sh', ['-c', script], options);
  }

  readFile(path: string, options?: FileOptions): Promise<Buffer> {
    return guestReadFile(this, path, options);
  }

  writeFile(path: string, data: string | Buffer, options?: FileOptions & { mode?: number }): Promise<void> {
    return guestWriteFile(this, path, data, options);
  }

  /** guest-set-time: to `ns` nanoseconds since the epoch (host time), or without it from the guest's RTC. */
  async setTime(ns?: bigint | number, options?: AgentCallOptions): Promise<void> {
    await this.execute('guest-set-time', ns === undefined ? undefined : { time: typeof ns === 'bigint' ? ns : BigInt(Math.round(ns)) }, options);
  }

  /** Freezes all guest filesystems; returns how many. */
  fsfreezeFreeze(options?: AgentCallOptions): Promise<number> {
    return this.execute<number>('guest-fsfreeze-freeze', undefined, options);
  }

  fsfreezeThaw(options?: AgentCallOptions): Promise<number> {
    return this.execute<number>('guest-fsfreeze-thaw', undefined, options);
  }

  fsfreezeStatus(options?: AgentCallOptions): Promise<'thawed' | 'frozen'> {
    return this.execute<'thawed' | 'frozen'>('guest-fsfreeze-status', undefined, options);
  }

  /**
   * guest-shutdown. qemu-ga sends no reply when it succeeds, so this resolves once the command is written; an
   * error reply, if one ever comes, is discarded by the resync the next command performs.
   */
  shutdown(mode: 'powerdown' | 'reboot' | 'halt' = 'powerdown', options?: AgentCallOptions): Promise<void> {
    return this.enqueue('guest-shutdown', options ?? {}, async (signal) => {
      await this.send('guest-shutdown', { mode }, signal);
      this.needsSync = true;
    });
  }

  async getHostName(options?: AgentCallOptions): Promise<string> {
    return (await this.execute<{ 'host-name': string }>('guest-get-host-name', undefined, options))['host-name'];
  }

  /** Closes the connection; pending and queued commands reject with VMFORK_AGENT_UNAVAILABLE. Idempotent. */
  close(): void {
    this.markClosed('guest agent client closed');
    this.socket.destroy();
  }

  private enqueue<T>(command: string, options: AgentCallOptions, job: (signal: AbortSignal) => Promise<T>, forceSync = false): Promise<T> {
    const timeoutMs = options.timeoutMs ?? this.commandTimeoutMs;
    const onTimeout = (queued: boolean): VmforkError => {
      if (!queued) this.needsSync = true; // its reply may still come: the next command must resync past it
      return new VmforkError('VMFORK_AGENT_TIMEOUT', `${command}: no reply within ${timeoutMs} ms${queued ? ' (never sent: still queued)' : ''}`, {
        details: { command, timeoutMs, socketPath: this.socketPath },
      });
    };
    return this.queue.run(timeoutMs, onTimeout, async (signal) => {
      if (this.closedReason) throw new VmforkError('VMFORK_AGENT_UNAVAILABLE', `${command}: ${this.closedReason.message}`);
      if (forceSync || this.needsSync) await this.resync(signal);
      return job(signal);
    });
  }

  /**
   * 0xFF flushes the agent's parser (a half-written request from a previous client is dropped); the agent writes
   * 0xFF before its reply, which makes our decoder drop any half-read stale reply; whole stale replies are
   * dropped here because their id is not the one we just drew.
   */
  private async resync(signal: AbortSignal): Promise<void> {
    this.needsSync = true;
    const id = randomInt(1, 2 ** 47);
    this.inbox = [];
    await this.write(Buffer.concat([SENTINEL, Buffer.from(encodeJsonLine({ execute: 'guest-sync-delimited', arguments: { id } }))]));
    // not a poll: each turn reads one reply, and `signal` (the command's deadline) ends the read of a silent agent
    for (;;) {
      const reply = await this.nextReply(signal);
      if (reply.ok && reply.value === id) {
        this.junk.good();
        break;
      }
      // a timed-out command's late reply is expected here once; a stream of them is a guest writing replies
      if (this.junkLine({ reply }, 'guest agent: discarded stale reply while syncing')) throw this.closedReason;
    }
    this.needsSync = false;
  }

  private async send(command: string, args: Record<string, unknown> | undefined, signal: AbortSignal): Promise<void> {
    if (this.inbox.length > 0) {
      const stale = this.inbox;
      this.inbox = [];
      for (const e of stale) if (this.junkLine({ stale: e.reply }, 'guest agent: discarded an unsolicited reply')) throw this.closedReason;
    }
    signal.throwIfAborted();
    await this.write(encodeJsonLine(args === undefined ? { execute: command } : { execute: command, arguments: args }));
  }

  private write(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.write(data, (err) => {
        if (err) reject(new VmforkError('VMFORK_AGENT_UNAVAILABLE', `write to ${this.socketPath} failed: ${err.message}`, { cause: err }));
        else resolve();
      });
    });
  }

  private nextReply(signal: AbortSignal): Promise<Reply> {
    const queued = this.inbox.shift();
    if (queued) return Promise.resolve(queued.reply);
    if (this.closedReason) return Promise.reject(this.closedReason);
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.waiter = undefined;
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      const settle = (fn: () => void): void => {
        signal.removeEventListener('abort', onAbort);
        this.waiter = undefined;
        fn();
      };
      this.waiter = { resolve: (reply) => settle(() => resolve(reply)), reject: (err) => settle(() => reject(err)) };
    });
  }

  private handleData(chunk: Buffer): void {
    for (const frame of this.decoder.push(chunk)) {
      if (this.closedReason) return;
      const reply = frame.type === 'message' && isObject(frame.value) ? parseReply(frame.value) : undefined;
      if (reply && this.waiter) this.waiter.resolve(reply);
      else if (reply && frame.type === 'message') this.keep(reply, frame.bytes);
      else if (frame.type !== 'sentinel') this.junkLine({ frame }, 'guest agent: skipped unexpected line');
    }
  }

  /** Queues a reply nobody waits for yet, within INBOX_MAX_REPLIES and one maximal line's worth of bytes. */
  private keep(reply: Reply, bytes: number): void {
    this.inbox.push({ reply, bytes });
    let total = this.inbox.reduce((sum, e) => sum + e.bytes, 0);
    while (this.inbox.length > INBOX_MAX_REPLIES || (total > this.maxLineBytes && this.inbox.length > 1)) {
      const dropped = this.inbox.shift();
      total -= dropped?.bytes ?? 0;
      if (this.junkLine({ dropped: dropped?.reply }, 'guest agent: inbox full, dropped the oldest unsolicited reply')) return;
    }
  }

  /** One junk line: logged (rate-limited); true when it was one too many in a row and the connection is dropped. */
  private junkLine(detail: Record<string, unknown>, msg: string): boolean {
    if (!this.junk.junk(detail, msg)) return false;
    this.markClosed(
      new VmforkError('VMFORK_AGENT_PROTOCOL', `guest agent on ${this.socketPath} sent ${this.junk.maxJunkLines} junk lines in a row; the connection was dropped`, {
        details: { socketPath: this.socketPath, junkLines: this.junk.maxJunkLines },
      }),
    );
    this.socket.destroy();
    return true;
  }

  private markClosed(reason: string | VmforkError): void {
    if (this.closedReason) return;
    this.closedReason = typeof reason === 'string' ? new VmforkError('VMFORK_AGENT_UNAVAILABLE', reason, { details: { socketPath: this.socketPath } }) : reason;
    this.waiter?.reject(this.closedReason);
  }
}
