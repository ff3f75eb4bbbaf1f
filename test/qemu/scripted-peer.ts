import assert from 'node:assert/strict';
import { afterEach, beforeEach } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VmforkError, type ErrorCode } from '../../src/errors.js';

/**
 * A scripted stand-in for QEMU's QMP monitor or for qemu-ga, for protocol unit tests only: a unix socket server
 * in a temp dir that records what the client writes and sends back exactly what the test says. It parses the
 * client's bytes on its own (split on LF, leading 0xFF noted) so it does not share the clients' decoder.
 */
export interface Received {
  /** The line as written, for what JSON.parse would round (big integers). */
  line: string;
  message: Record<string, unknown>;
  /** The line was preceded by a 0xFF byte (guest-agent resync). */
  sentinel: boolean;
  execute: string | undefined;
  arguments: Record<string, unknown> | undefined;
  id: unknown;
}

export type Step =
  | { send: unknown }
  | { raw: string | Buffer }
  | { expect: string; reply?: unknown; error?: { class: string; desc: string }; noReply?: true; delayMs?: number }
  | { event: string; data?: Record<string, unknown>; afterMs?: number }
  | { wait: number }
  | { close: true };

export const QMP_GREETING = {
  QMP: { version: { qemu: { major: 7, minor: 2, micro: 22 }, package: 'Debian 1:7.2+dfsg-7' }, capabilities: ['oob'] },
};

export class PeerConnection {
  readonly received: Received[] = [];
  private unread: Received[] = [];
  private readers: ((r: Received) => void)[] = [];
  private buffer = Buffer.alloc(0);
  readonly closed: Promise<void>;

  constructor(readonly socket: Socket) {
    this.closed = new Promise((resolve) => socket.on('close', () => resolve()));
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  /** Writes one JSON message as QEMU does (CRLF-terminated). */
  send(value: unknown): void {
    this.raw(`${JSON.stringify(value)}\r\n`);
  }

  raw(data: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  /** Resolves with the next message the client wrote (optionally asserting its command). */
  async expect(command?: string, timeoutMs = 2_000): Promise<Received> {
    const next =
      this.unread.shift() ??
      (await new Promise<Received>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`peer: nothing received within ${timeoutMs} ms (expected ${command ?? 'a message'})`)), timeoutMs);
        this.readers.push((r) => {
          clearTimeout(timer);
          resolve(r);
        });
      }));
    if (command !== undefined) assert.equal(next.execute, command, `peer expected ${command}, got ${JSON.stringify(next.message)}`);
    return next;
  }

  /** Messages received but not yet consumed by expect(). */
  get pending(): number {
    return this.unread.length;
  }

  reply(request: Received, value: unknown): void {
    this.send(request.id === undefined ? { return: value } : { return: value, id: request.id });
  }

  replyError(request: Received, errorClass: string, desc: string): void {
    const error = { class: errorClass, desc };
    this.send(request.id === undefined ? { error } : { error, id: request.id });
  }

  event(name: string, data?: Record<string, unknown>): void {
    const now = Date.now();
    this.send({ event: name, ...(data ? { data } : {}), timestamp: { seconds: Math.floor(now / 1000), microseconds: (now % 1000) * 1000 } });
  }

  /** QMP: greeting, then qmp_capabilities → {}. */
  async negotiate(greeting: unknown = QMP_GREETING): Promise<Received> {
    this.send(greeting);
    const caps = await this.expect('qmp_capabilities');
    this.reply(caps, {});
    return caps;
  }

  /** qemu-ga: expects 0xFF + guest-sync-delimited and answers 0xFF + the id, optionally after stale lines. */
  async answerSync(staleBefore: (string | Buffer)[] = []): Promise<Received> {
    const sync = await this.expect('guest-sync-delimited');
    assert.ok(sync.sentinel, 'guest-sync-delimited must be preceded by 0xFF');
    for (const stale of staleBefore) this.raw(stale);
    this.raw(Buffer.concat([Buffer.from([0xff]), Buffer.from(`${JSON.stringify({ return: sync.arguments?.id })}\n`)]));
    return sync;
  }

  /** Plays steps in order; resolves with what `expect` steps received. */
  async play(steps: Step[]): Promise<Received[]> {
    const got: Received[] = [];
    for (const step of steps) {
      if ('send' in step) this.send(step.send);
      else if ('raw' in step) this.raw(step.raw);
      else if ('wait' in step) await delay(step.wait);
      else if ('close' in step) this.socket.end();
      else if ('event' in step) {
        if (step.afterMs) await delay(step.afterMs);
        this.event(step.event, step.data);
      } else {
        const request = await this.expect(step.expect);
        got.push(request);
        if (step.delayMs) await delay(step.delayMs);
        if (step.error) this.replyError(request, step.error.class, step.error.desc);
        else if (!step.noReply) this.reply(request, step.reply ?? {});
      }
    }
    return got;
  }

  end(): void {
    this.socket.end();
  }

  private onData(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (let lf = this.buffer.indexOf(0x0a); lf !== -1; lf = this.buffer.indexOf(0x0a)) {
      let line = this.buffer.subarray(0, lf);
      this.buffer = this.buffer.subarray(lf + 1);
      let sentinel = false;
      while (line[0] === 0xff) {
        sentinel = true;
        line = line.subarray(1);
      }
      const text = line.toString('utf8');
      const message = JSON.parse(text) as Record<string, unknown>;
      const received: Received = {
        line: text,
        message,
        sentinel,
        execute: typeof message.execute === 'string' ? message.execute : undefined,
        arguments: message.arguments as Record<string, unknown> | undefined,
        id: message.id,
      };
      this.received.push(received);
      const reader = this.readers.shift();
      if (reader) reader(received);
      else this.unread.push(received);
    }
  }
}

export class ScriptedPeer {
  readonly dir = mkdtempSync(join(tmpdir(), 'vmfork-peer-'));
  readonly path = join(this.dir, 'peer.sock');
  readonly connections: PeerConnection[] = [];
  private server: Server | undefined;
  private unclaimed: PeerConnection[] = [];
  private claimers: ((c: PeerConnection) => void)[] = [];

  /** A peer in a fresh temp dir; `listen: false` leaves the socket path absent until `listen()`. */
  static async start(options: { listen?: boolean; onConnection?: (c: PeerConnection) => void } = {}): Promise<ScriptedPeer> {
    const peer = new ScriptedPeer();
    if (options.listen !== false) await peer.listen(options.onConnection);
    return peer;
  }

  listen(onConnection?: (c: PeerConnection) => void): Promise<void> {
    const server = createServer((socket) => {
      const connection = new PeerConnection(socket);
      this.connections.push(connection);
      if (onConnection) onConnection(connection);
      const claimer = this.claimers.shift();
      if (claimer) claimer(connection);
      else this.unclaimed.push(connection);
    });
    this.server = server;
    return new Promise((resolve) => server.listen(this.path, resolve));
  }

  nextConnection(timeoutMs = 2_000): Promise<PeerConnection> {
    const ready = this.unclaimed.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`peer: no connection within ${timeoutMs} ms`)), timeoutMs);
      this.claimers.push((c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
  }

  async stop(): Promise<void> {
    for (const c of this.connections) c.socket.destroy();
    const server = this.server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Gives every test of the file a fresh listening peer, and closes the clients a test tracked when it ends. */
export function peerPerTest(): { peer(): ScriptedPeer; track<C extends { close(): void }>(client: C): C } {
  let current: ScriptedPeer | undefined;
  const clients: { close(): void }[] = [];
  beforeEach(async () => {
    current = await ScriptedPeer.start();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await current?.stop();
  });
  return {
    peer: () => {
      assert.ok(current, 'peerPerTest: no peer outside a test');
      return current;
    },
    track: (client) => {
      clients.push(client);
      return client;
    },
  };
}

/** assert.rejects predicate: a VmforkError with this code. */
export function hasCode(code: ErrorCode): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof VmforkError, `expected VmforkError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  };
}
