import type { Socket } from 'node:net';
import { VmforkError } from '../errors.js';
import { QemuCommandError, SerialQueue, parseReply, type Reply } from './command-queue.js';
import { JsonLineDecoder, QMP_MAX_LINE_BYTES, SILENT_LOGGER, encodeJsonLine, isObject, type ProtocolLogger } from './json-line-stream.js';
import { JunkGuard, type JunkOptions } from './junk-guard.js';
import type { QmpEvent, QmpGreeting } from './qmp-types.js';

export interface QmpConnectOptions extends JunkOptions {
  /** Bounds connect + greeting + capabilities negotiation. @default 5000 */
  connectTimeoutMs?: number;
  /** Per-command timeout when `execute` is given none. @default 30000 */
  commandTimeoutMs?: number;
  /** Unparseable lines and discarded replies are reported here (rate-limited). @default silent */
  logger?: ProtocolLogger;
  /** A longer line is junk. @default QMP_MAX_LINE_BYTES */
  maxLineBytes?: number;
}

export interface CommandOptions {
  /** Counts from the call, time spent queued behind earlier commands included. */
  timeoutMs?: number;
}

/** Thrown by `QmpClient.execute` when QEMU answers a command with `{"error": {"class", "desc"}}`. */
export class QmpCommandError extends QemuCommandError {
  constructor(command: string, errorClass: string, desc: string) {
    super('VMFORK_QMP_ERROR', command, errorClass, desc);
    this.name = 'QmpCommandError';
  }
}

interface Waiter {
  command: string;
  settle(reply: Reply): void;
  fail(err: VmforkError): void;
}

type EventListener = (event: QmpEvent) => void;
type CloseListener = (reason: VmforkError) => void;

/**
 * The QMP protocol on a connected unix socket (QmpClient adds connect and the command vocabulary). Commands go
 * through ONE queue: exactly one is on the wire at a time, each with its own numeric `id`; a reply is handed to
 * the waiter registered under its id, so the late reply of a command that already timed out finds no waiter and
 * is dropped instead of answering the next command.
 */
export class QmpConnection {
  private readonly decoder: JsonLineDecoder;
  private readonly junk: JunkGuard;
  private readonly queue = new SerialQueue();
  private readonly waiters = new Map<number, Waiter>();
  private readonly eventListeners = new Map<string, Set<EventListener>>();
  private readonly closeListeners = new Set<CloseListener>();
  private readonly logger: ProtocolLogger;
  private readonly commandTimeoutMs: number;
  private nextId = 1;
  private greetingValue: QmpGreeting | undefined;
  private onGreeting: ((greeting: QmpGreeting | VmforkError) => void) | undefined;
  private closedReason: VmforkError | undefined;

  protected constructor(
    private readonly socket: Socket,
    readonly socketPath: string,
    options: QmpConnectOptions,
  ) {
    this.logger = options.logger ?? SILENT_LOGGER;
    this.commandTimeoutMs = options.commandTimeoutMs ?? 30_000;
    this.decoder = new JsonLineDecoder({ maxLineBytes: options.maxLineBytes ?? QMP_MAX_LINE_BYTES });
    this.junk = new JunkGuard(this.logger, { socketPath }, options);
    socket.on('data', (chunk: Buffer) => this.handleData(chunk));
    socket.on('error', (err) => this.logger.debug({ err, socketPath }, 'QMP socket error'));
    socket.on('close', () => this.shutdown(unavailable(`QMP socket ${socketPath} closed`, socketPath)));
  }

  /** The greeting QEMU sent on connect. */
  get greeting(): QmpGreeting {
    if (!this.greetingValue) throw new VmforkError('VMFORK_INTERNAL', 'QMP greeting read before connect finished');
    return this.greetingValue;
  }

  get version(): QmpGreeting['QMP']['version'] {
    return this.greeting.QMP.version;
  }

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  /** Sends one command and resolves with its `return` value. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, options: CommandOptions = {}): Promise<T> {
    const timeoutMs = options.timeoutMs ?? this.commandTimeoutMs;
    const onTimeout = (queued: boolean): VmforkError =>
      new VmforkError('VMFORK_QMP_TIMEOUT', `${command}: no reply within ${timeoutMs} ms${queued ? ' (never sent: still queued)' : ''}`, {
        details: { command, timeoutMs, socketPath: this.socketPath },
      });
    return this.queue.run(timeoutMs, onTimeout, (signal) => this.roundTrip<T>(command, args, signal));
  }

  /**
   * Subscribes to a QMP event by name (`'*'` for all), or to `'close'` (called once, with the reason, when the
   * connection ends; at once if it already has). Returns the unsubscribe function.
   */
  on(event: 'close', listener: CloseListener): () => void;
  on(event: string, listener: EventListener): () => void;
  on(event: string, listener: EventListener | CloseListener): () => void {
    if (event === 'close') {
      const onClose = listener as CloseListener;
      const reason = this.closedReason;
      if (reason) queueMicrotask(() => onClose(reason));
      else this.closeListeners.add(onClose);
      return () => this.closeListeners.delete(onClose);
    }
    let set = this.eventListeners.get(event);
    if (!set) this.eventListeners.set(event, (set = new Set()));
    set.add(listener as EventListener);
    return () => set.delete(listener as EventListener);
  }

  /**
   * Resolves with the next event `name` that satisfies `predicate`. Call it BEFORE the command that triggers the
   * event: events that arrived earlier are not replayed.
   */
  waitForEvent(name: string, options: { timeoutMs: number; predicate?: (event: QmpEvent) => boolean }): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      const finish = (fn: () => void): void => {
        clearTimeout(timer);
        offEvent();
        offClose();
        fn();
      };
      const timer = setTimeout(
        () => finish(() => reject(new VmforkError('VMFORK_QMP_TIMEOUT', `no ${name} event within ${options.timeoutMs} ms`, { details: { event: name } }))),
        options.timeoutMs,
      );
      const offEvent = this.on(name, (event) => {
        try {
          if (options.predicate && !options.predicate(event)) return;
          finish(() => resolve(event));
        } catch (err) {
          finish(() => reject(err));
        }
      });
      const offClose = this.on('close', (reason) => finish(() => reject(reason)));
    });
  }

  /** Closes the connection; pending and queued commands reject with VMFORK_QMP_UNAVAILABLE. Idempotent. */
  close(): void {
    this.shutdown(unavailable('QMP client closed', this.socketPath));
    this.socket.destroy();
  }

  /** Reads the greeting, then negotiates capabilities (none are enabled). */
  protected async handshake(deadline: number): Promise<void> {
    const greeting = await new Promise<QmpGreeting | VmforkError>((resolve) => {
      const timer = setTimeout(() => {
        this.onGreeting = undefined;
        resolve(new VmforkError('VMFORK_QMP_TIMEOUT', `no QMP greeting on ${this.socketPath} (is another client connected?)`));
      }, Math.max(0, deadline - Date.now()));
      this.onGreeting = (value) => {
        clearTimeout(timer);
        this.onGreeting = undefined;
        resolve(value);
      };
    });
    if (greeting instanceof VmforkError) throw greeting;
    this.greetingValue = greeting;
    try {
      await this.execute('qmp_capabilities', undefined, { timeoutMs: Math.max(1, deadline - Date.now()) });
    } catch (err) {
      if (err instanceof QmpCommandError) throw new VmforkError('VMFORK_QMP_PROTOCOL', `capabilities negotiation refused: ${err.desc}`, { cause: err });
      throw err;
    }
  }

  private roundTrip<T>(command: string, args: Record<string, unknown> | undefined, signal: AbortSignal): Promise<T> {
    if (this.closedReason) return Promise.reject(new VmforkError('VMFORK_QMP_UNAVAILABLE', `${command}: ${this.closedReason.message}`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => {
        this.waiters.delete(id);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      const done = (): void => {
        signal.removeEventListener('abort', onAbort);
        this.waiters.delete(id);
      };
      this.waiters.set(id, {
        command,
        settle: (reply) => {
          done();
          if (reply.ok) resolve(reply.value as T);
          else reject(new QmpCommandError(command, reply.errorClass, reply.desc));
        },
        fail: (err) => {
          done();
          reject(err);
        },
      });
      this.socket.write(encodeJsonLine(args === undefined ? { execute: command, id } : { execute: command, arguments: args, id }));
    });
  }

  private handleData(chunk: Buffer): void {
    for (const frame of this.decoder.push(chunk)) {
      if (this.closedReason) return;
      if (frame.type === 'message' && isObject(frame.value)) this.handleMessage(frame.value);
      else if (this.onGreeting) this.onGreeting(new VmforkError('VMFORK_QMP_PROTOCOL', `${this.socketPath} did not send a QMP greeting`));
      else if (frame.type === 'garbage') this.skip({ frame }, 'QMP: skipped unparseable line');
      else this.skip({ value: frame.type === 'message' ? frame.value : undefined }, 'QMP: skipped a line that is not an object');
    }
  }

  /** One junk line: logged (rate-limited), and one too many in a row drops the connection. */
  private skip(detail: Record<string, unknown>, msg: string): void {
    if (!this.junk.junk(detail, msg)) return;
    this.shutdown(
      new VmforkError('VMFORK_QMP_PROTOCOL', `${this.socketPath} sent ${this.junk.maxJunkLines} junk lines in a row; the connection was dropped`, {
        details: { socketPath: this.socketPath, junkLines: this.junk.maxJunkLines },
      }),
    );
    this.socket.destroy();
  }

  private handleMessage(message: Record<string, unknown>): void {
    if (this.onGreeting) {
      if (isGreeting(message)) this.onGreeting(message);
      else this.onGreeting(new VmforkError('VMFORK_QMP_PROTOCOL', `${this.socketPath} sent ${JSON.stringify(message).slice(0, 200)} instead of a QMP greeting`));
      return;
    }
    if (typeof message.event === 'string') {
      this.dispatchEvent(message as unknown as QmpEvent);
      return;
    }
    const reply = parseReply(message);
    if (!reply) {
      this.skip({ message }, 'QMP: skipped unexpected message');
      return;
    }
    // QEMU echoes our id; only a request it could not parse gets an id-less error, and with one command on the
    // wire at a time that error can only belong to it.
    const waiter = typeof message.id === 'number' ? this.waiters.get(message.id) : message.id === undefined && !reply.ok && this.waiters.size === 1 ? [...this.waiters.values()][0] : undefined;
    if (waiter) {
      this.junk.good();
      waiter.settle(reply);
    } else this.skip({ id: message.id }, 'QMP: discarded reply to a timed-out or unknown command');
  }

  private dispatchEvent(event: QmpEvent): void {
    for (const listener of [...(this.eventListeners.get(event.event) ?? []), ...(this.eventListeners.get('*') ?? [])]) {
      try {
        listener(event);
      } catch (err) {
        this.logger.warn({ err, event: event.event }, 'QMP: event listener threw');
      }
    }
  }

  /** Ends the connection for `reason`: commands in flight fail with its code (UNAVAILABLE, or PROTOCOL for junk). */
  private shutdown(reason: VmforkError): void {
    if (this.closedReason) return;
    this.closedReason = reason;
    const why = reason.message;
    this.onGreeting?.(new VmforkError(reason.code, `${why} before sending a greeting`));
    for (const waiter of [...this.waiters.values()]) waiter.fail(new VmforkError(reason.code, `${waiter.command}: ${why}`, { details: reason.details }));
    for (const listener of [...this.closeListeners]) {
      try {
        listener(reason);
      } catch (err) {
        this.logger.warn({ err }, 'QMP: close listener threw');
      }
    }
    this.closeListeners.clear();
  }
}

function unavailable(why: string, socketPath: string): VmforkError {
  return new VmforkError('VMFORK_QMP_UNAVAILABLE', why, { details: { socketPath } });
}

function isGreeting(message: Record<string, unknown>): message is Record<string, unknown> & QmpGreeting {
  const qmp = message.QMP;
  if (!isObject(qmp) || !isObject(qmp.version) || !Array.isArray(qmp.capabilities)) return false;
  const qemu = qmp.version.qemu;
  return isObject(qemu) && ['major', 'minor', 'micro'].every((k) => typeof qemu[k] === 'number');
}
