import { randomInt } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { VmforkError, isVmforkError } from '../errors.js';
import { JunkGuard, connectUnixSocket, sleep, type JunkOptions, type ProtocolLogger } from '../qemu/index.js';
import { FrameDecoder } from './codec.js';
import {
  decodeAgentMessage,
  encodeHostMessage,
  type AgentForkMe,
  type AgentHello,
  type AgentKicked,
  type AgentMessage,
  type AgentPrepared,
  type AgentReport,
  type AgentSessions,
  type ConfigRequest,
  type HostMessage,
  type PrepareRequest,
} from './messages.js';
import { MessageType } from './protocol.js';

export interface AgentClientOptions extends JunkOptions {
  /** Stream errors, skipped bytes and dropped messages (rate-limited) are reported here. @default silent */
  logger?: ProtocolLogger;
  /** Sent in HELLO for the agent's log. @default 'vmfork' */
  hostSoftware?: string;
}

export interface AgentCallOptions {
  timeoutMs?: number;
}

export interface WaitAgentOptions extends AgentClientOptions {
  /** Deadline for connecting and the handshake together. */
  timeoutMs: number;
  /** How long the first HELLO waits before another is sent; each next one waits twice as long, up to 8×. @default 1_000 */
  attemptTimeoutMs?: number;
  /** Ends the wait early (a cancelled task) with the signal's reason; the connection being tried is closed. */
  signal?: AbortSignal;
}

export interface PrepareResult {
  prepared: AgentPrepared;
  /** Present when fork was asked for and every step succeeded: the host cuts the template now. */
  forkMe?: AgentForkMe;
}

interface Waiter {
  id: number;
  type: AgentMessage['type'];
  resolve(m: AgentMessage): void;
  reject(err: VmforkError): void;
}

const QUIET: ProtocolLogger = { debug: () => undefined, warn: () => undefined };
const INBOX_LIMIT = 32;

/**
 * Host side of the vmfork-guest protocol over QEMU's chardev socket (or any stream, in tests). Requests carry ids
 * and answers are matched by id, so a late answer to a timed-out request is dropped instead of being taken for
 * the next one. The first thing on a connection is the handshake: until the answer to this client's own HELLO
 * arrives, bytes are skipped (the tail of a frame the agent wrote for an earlier connection, answers to earlier
 * HELLOs); after it, any violation of PROTOCOL.md closes the connection with VMFORK_AGENT_PROTOCOL.
 */
export class VmforkAgentClient {
  private readonly decoder = new FrameDecoder();
  private readonly helloIds = new Set<number>();
  private readonly waiters: Waiter[] = [];
  private readonly inbox: AgentMessage[] = [];
  private readonly logger: ProtocolLogger;
  private readonly junk: JunkGuard;
  private readonly hostSoftware: string;
  private nextId = randomInt(1, 2 ** 30);
  private closedReason: VmforkError | undefined;
  private sessionWatch: { id: number; onSessions: (s: AgentSessions) => void } | undefined;
  private readonly endedWith: Promise<VmforkError>;
  private markEnded: (reason: VmforkError) => void = () => undefined;
  /** The last HELLO the agent answered on this connection. */
  lastHello: AgentHello | undefined;

  private constructor(
    private readonly stream: Duplex,
    readonly label: string,
    options: AgentClientOptions,
  ) {
    this.endedWith = new Promise((resolve) => (this.markEnded = resolve));
    this.logger = options.logger ?? QUIET;
    this.hostSoftware = options.hostSoftware ?? 'vmfork';
    this.junk = new JunkGuard(this.logger, { agent: label }, options);
    this.decoder.seekUntil((h) => h.type === MessageType.HELLO && this.helloIds.has(h.id));
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('error', (err) => this.logger.debug({ err, agent: label }, 'vmfork-guest stream error'));
    stream.on('close', () => this.fail(new VmforkError('VMFORK_AGENT_UNAVAILABLE', `the connection to vmfork-guest (${label}) closed`)));
  }

  /** Connects to the agent's chardev socket; no handshake yet (a child's QEMU may still be paused). */
  static async connect(socketPath: string, options: AgentClientOptions & AgentCallOptions = {}): Promise<VmforkAgentClient> {
    try {
      return new VmforkAgentClient(await connectUnixSocket(socketPath, options.timeoutMs ?? 5_000), socketPath, options);
    } catch (err) {
      throw new VmforkError('VMFORK_AGENT_UNAVAILABLE', `cannot connect to ${socketPath}: ${(err as Error).message}`, { cause: err, details: { socketPath } });
    }
  }

  /** A client over an already connected stream (tests: one end of a socketpair). */
  static fromStream(stream: Duplex, label: string, options: AgentClientOptions = {}): VmforkAgentClient {
    return new VmforkAgentClient(stream, label, options);
  }

  /**
   * Connects and repeats HELLO until the agent answers (a booting guest starts it late; QEMU holds the requests
   * until the guest opens its port). VMFORK_AGENT_UNAVAILABLE if the socket never accepted a connection,
   * VMFORK_AGENT_TIMEOUT if the agent never answered.
   */
  static async waitReady(socketPath: string, options: WaitAgentOptions): Promise<VmforkAgentClient> {
    const deadline = Date.now() + options.timeoutMs;
    const left = (): number => deadline - Date.now();
    // each unanswered HELLO waits twice as long as the one before (up to 8×): on a busy host the agent can take
    // seconds to answer, and one that always answers after the fixed wait would never be reached
    let attempt = 0;
    let client: VmforkAgentClient | undefined;
    let connected = false;
    let lastError: unknown;
    const { signal } = options;
    // a cancel closes the attempt in flight (its HELLO fails at once) and ends the wait with the signal's reason
    const onAbort = (): void => client?.close();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      while (left() > 0) {
        try {
          client ??= await VmforkAgentClient.connect(socketPath, { ...options, timeoutMs: Math.max(1, Math.min(1_000, left())) });
          connected = true;
          signal?.throwIfAborted();
          await client.hello({ timeoutMs: Math.max(1, Math.min((options.attemptTimeoutMs ?? 1_000) * 2 ** Math.min(attempt, 3), left())) });
          return client;
        } catch (err) {
          if (signal?.aborted || (isVmforkError(err) && (err.code === 'VMFORK_AGENT_ERROR' || err.code === 'VMFORK_AGENT_PROTOCOL'))) {
            client?.close();
            throw signal?.aborted ? signal.reason : err; // cancelled, or it answered wrongly: waiting longer will not help
          }
          lastError = err;
          attempt++;
          if (client?.closed) client = undefined;
          if (!client) await sleep(Math.max(0, Math.min(100, left())), signal);
        }
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    client?.close();
    const code = connected ? 'VMFORK_AGENT_TIMEOUT' : 'VMFORK_AGENT_UNAVAILABLE';
    const what = connected ? 'vmfork-guest did not answer HELLO' : 'the vmfork-guest socket never accepted a connection';
    throw new VmforkError(code, `${what} within ${options.timeoutMs} ms (${socketPath})`, { cause: lastError, details: { socketPath } });
  }

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  /** Resolves (never rejects) once the connection is over, with why: close(), the stream gone, a protocol error. */
  get ended(): Promise<VmforkError> {
    return this.endedWith;
  }

  /** The handshake: the agent's protocol version, capabilities and fork state. */
  async hello(options: AgentCallOptions = {}): Promise<AgentHello> {
    const id = this.takeId();
    this.helloIds.add(id);
    this.send(id, { type: 'hello', hostSoftware: this.hostSoftware });
    const hello = (await this.waitFor(id, 'hello', options.timeoutMs ?? 5_000, 'HELLO')) as AgentHello;
    this.lastHello = hello;
    return hello;
  }

  /**
   * PREPARE, then (unless `fork: false`) the agent's FORK_ME: when this resolves with `forkMe`, the guest is
   * blocked waiting for its configuration and the host should freeze it at once.
   */
  async prepare(request: Omit<PrepareRequest, 'type'>, options: AgentCallOptions = {}): Promise<PrepareResult> {
    const timeoutMs = options.timeoutMs ?? 120_000;
    const started = Date.now();
    const id = this.request({ type: 'prepare', ...request });
    const prepared = (await this.waitFor(id, 'prepared', timeoutMs, 'PREPARE')) as AgentPrepared;
    if (request.fork === false || !prepared.steps.every((s) => s.ok)) return { prepared };
    const forkMe = (await this.waitFor(id, 'fork-me', Math.max(1, timeoutMs - (Date.now() - started)), 'PREPARE')) as AgentForkMe;
    return { prepared, forkMe };
  }

  /** CONFIG: the agent applies the identity and answers with what the guest now shows (its REPORT). */
  async configure(request: Omit<ConfigRequest, 'type'>, options: AgentCallOptions = {}): Promise<AgentReport> {
    const id = this.request({ type: 'config', ...request });
    return (await this.waitFor(id, 'report', options.timeoutMs ?? 30_000, 'CONFIG')) as AgentReport;
  }

  /** The service kicks that follow a REPORT (journald restart, ssh start), by the REPORT's id. */
  async kicked(reportId: number, options: AgentCallOptions = {}): Promise<AgentKicked> {
    return (await this.waitFor(reportId, 'kicked', options.timeoutMs ?? 30_000, 'CONFIG')) as AgentKicked;
  }

  /**
   * WATCH: resolves with the guest's class=user login sessions now; `onSessions` gets that list and every changed
   * one after it, for as long as this connection lasts (`ended`). A second WATCH replaces the first.
   */
  async watchSessions(onSessions: (s: AgentSessions) => void, options: AgentCallOptions = {}): Promise<AgentSessions> {
    const id = this.request({ type: 'watch' });
    this.sessionWatch = { id, onSessions };
    return (await this.waitFor(id, 'sessions', options.timeoutMs ?? 10_000, 'WATCH')) as AgentSessions;
  }

  close(): void {
    this.fail(new VmforkError('VMFORK_AGENT_UNAVAILABLE', `the connection to vmfork-guest (${this.label}) was closed by this client`));
  }

  private takeId(): number {
    const id = this.nextId;
    this.nextId = this.nextId >= 0xfffffff0 ? 1 : this.nextId + 1;
    return id;
  }

  private request(msg: Exclude<HostMessage, { type: 'hello' }>): number {
    if (this.decoder.seeking) throw new VmforkError('VMFORK_INTERNAL', `vmfork-guest ${msg.type} before the HELLO handshake (${this.label})`);
    const id = this.takeId();
    this.send(id, msg);
    return id;
  }

  private send(id: number, msg: HostMessage): void {
    if (this.closedReason) throw this.closedReason;
    this.stream.write(encodeHostMessage(id, msg));
  }

  private waitFor(id: number, type: AgentMessage['type'], timeoutMs: number, what: string): Promise<AgentMessage> {
    const i = this.inbox.findIndex((m) => m.id === id && (m.type === type || m.type === 'error'));
    if (i >= 0) {
      const [m] = this.inbox.splice(i, 1);
      return m && m.type === 'error' ? Promise.reject(refusal(what, m)) : Promise.resolve(m as AgentMessage);
    }
    if (this.closedReason) return Promise.reject(this.closedReason);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.removeWaiter(waiter);
        reject(new VmforkError('VMFORK_AGENT_TIMEOUT', `vmfork-guest did not answer ${what} within ${timeoutMs} ms (${this.label})`, { details: { requestId: id } }));
      }, timeoutMs);
      const waiter: Waiter = {
        id,
        type,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.waiters.push(waiter);
    }).then(
      (m) => (m as AgentMessage).type === 'error' ? Promise.reject(refusal(what, m as Extract<AgentMessage, { type: 'error' }>)) : (m as AgentMessage),
    );
  }

  private removeWaiter(w: Waiter): void {
    const i = this.waiters.indexOf(w);
    if (i >= 0) this.waiters.splice(i, 1);
  }

  private onData(chunk: Buffer): void {
    let messages: AgentMessage[];
    try {
      const frames = this.decoder.push(chunk);
      messages = frames.map(decodeAgentMessage);
    } catch (err) {
      this.fail(isVmforkError(err) ? err : new VmforkError('VMFORK_AGENT_PROTOCOL', String(err), { cause: err }));
      return;
    }
    if (this.decoder.skipped > 0) {
      this.logger.debug({ agent: this.label, bytes: this.decoder.skipped }, 'vmfork-guest: skipped bytes before the handshake answer');
      this.decoder.skipped = 0;
    }
    for (const m of messages) this.dispatch(m);
  }

  private dispatch(m: AgentMessage): void {
    const watching = m.type === 'sessions' && m.id === this.sessionWatch?.id;
    if (watching) this.deliverSessions(m);
    const w = this.waiters.find((x) => x.id === m.id && (x.type === m.type || m.type === 'error'));
    if (w) {
      this.junk.good();
      this.removeWaiter(w);
      w.resolve(m);
      return;
    }
    if (watching) return;
    if (m.type === 'hello' && this.helloIds.has(m.id)) return; // the answer to an earlier, retried HELLO
    if (m.type === 'error' && m.id === 0) {
      // a framing error the agent could not tie to a request: the stream position was lost on its side
      this.fail(new VmforkError('VMFORK_AGENT_PROTOCOL', `vmfork-guest lost the frame boundary: ${m.code}: ${m.message}`));
      return;
    }
    this.inbox.push(m);
    if (this.inbox.length <= INBOX_LIMIT) return;
    // well-formed but unasked for, past what any exchange leaves waiting: counted, logged (rate-limited), dropped
    const dropped = this.inbox.shift();
    if (this.junk.junk({ dropped: { type: dropped?.type, id: dropped?.id } }, 'vmfork-guest: inbox full, dropped the oldest unsolicited message')) {
      this.fail(new VmforkError('VMFORK_AGENT_PROTOCOL', `vmfork-guest (${this.label}) sent ${this.junk.maxJunkLines} unsolicited messages past its inbox in a row; the connection was dropped`));
    }
  }

  private deliverSessions(m: AgentSessions): void {
    try {
      this.sessionWatch?.onSessions(m);
    } catch (err) {
      // a listener's bug must not take the stream's data handler (and the process) down with it
      this.logger.warn({ err, agent: this.label }, 'vmfork-guest: the SESSIONS listener threw');
    }
  }

  private fail(reason: VmforkError): void {
    if (this.closedReason) return;
    this.closedReason = reason;
    this.markEnded(reason);
    for (const w of this.waiters.splice(0)) w.reject(reason);
    this.stream.destroy();
  }
}

function refusal(what: string, m: Extract<AgentMessage, { type: 'error' }>): VmforkError {
  return new VmforkError('VMFORK_AGENT_ERROR', `vmfork-guest refused ${what}: ${m.code}: ${m.message}`, { details: { agentCode: m.code, requestId: m.id } });
}
