import { randomBytes } from 'node:crypto';
import { createConnection, type Socket } from 'node:net';

/**
 * Framing shared by the QMP and guest-agent clients. Both peers write one JSON object per line (QEMU ends each
 * message with CRLF, qemu-ga with LF; neither ever puts a raw newline inside a message). The guest agent may
 * also write a 0xFF byte right before the reply to `guest-sync-delimited`: 0xFF never occurs in UTF-8 text, so
 * it marks the point where everything received before it (a half-read stale reply) must be thrown away.
 */
export type Frame =
  /** One parsed JSON value (any JSON: the client decides whether its shape makes sense). */
  | { type: 'message'; value: unknown }
  /** A line that is not JSON (or too long); `text` is its beginning, for the log. */
  | { type: 'garbage'; text: string; error: string }
  /** A 0xFF byte: the partial line before it was dropped. */
  | { type: 'sentinel' };

export interface DecoderOptions {
  /**
   * Treat 0xFF as a resynchronisation sentinel (guest agent). Off for QMP, where 0xFF would just be garbage.
   * @default false
   */
  sentinel?: boolean;
  /**
   * A line longer than this is dropped as garbage instead of growing memory without bound. qemu-ga's own JSON
   * parser stops at 64 MiB, so nothing legitimate is longer.
   * @default 96 MiB
   */
  maxLineBytes?: number;
}

const LF = 0x0a;
const SENTINEL = 0xff;
const GARBAGE_PREVIEW = 200;

/** Turns a byte stream into frames. Feed it every chunk the socket delivers, in order. */
export class JsonLineDecoder {
  private parts: Buffer[] = [];
  private size = 0;
  private overflowed = false;
  private readonly sentinel: boolean;
  private readonly maxLineBytes: number;

  constructor(options: DecoderOptions = {}) {
    this.sentinel = options.sentinel ?? false;
    this.maxLineBytes = options.maxLineBytes ?? 96 * 1024 * 1024;
  }

  push(chunk: Buffer): Frame[] {
    const frames: Frame[] = [];
    let start = 0;
    while (start < chunk.length) {
      const lf = chunk.indexOf(LF, start);
      const ff = this.sentinel ? chunk.indexOf(SENTINEL, start) : -1;
      if (ff !== -1 && (lf === -1 || ff < lf)) {
        this.reset();
        frames.push({ type: 'sentinel' });
        start = ff + 1;
      } else if (lf !== -1) {
        this.append(chunk.subarray(start, lf));
        const frame = this.takeLine();
        if (frame) frames.push(frame);
        start = lf + 1;
      } else {
        this.append(chunk.subarray(start));
        break;
      }
    }
    return frames;
  }

  private append(bytes: Buffer): void {
    if (this.overflowed || bytes.length === 0) return;
    if (this.size + bytes.length > this.maxLineBytes) {
      this.overflowed = true;
      this.parts = [];
      this.size = 0;
      return;
    }
    this.parts.push(bytes);
    this.size += bytes.length;
  }

  private takeLine(): Frame | undefined {
    if (this.overflowed) {
      this.reset();
      return { type: 'garbage', text: '', error: `line longer than ${this.maxLineBytes} bytes` };
    }
    const text = Buffer.concat(this.parts, this.size).toString('utf8').trim();
    this.reset();
    if (text === '') return undefined;
    try {
      return { type: 'message', value: JSON.parse(text) as unknown };
    } catch (err) {
      return { type: 'garbage', text: text.slice(0, GARBAGE_PREVIEW), error: (err as Error).message };
    }
  }

  private reset(): void {
    this.parts = [];
    this.size = 0;
    this.overflowed = false;
  }
}

// JSON.stringify cannot write a bigint, and a nanosecond timestamp (~1.7e18) does not fit a double exactly. Bigints
// are written as a marker string first, then the quoted marker is replaced by the bare digits. The random tag makes
// a collision with a real string impossible in practice.
const BIGINT_TAG = `bigint-${randomBytes(6).toString('hex')}:`;
const BIGINT_MARKER = new RegExp(`"${BIGINT_TAG}(-?\\d+)"`, 'g');

/** One message as a line, ready to write. Bigints become JSON integers. */
export function encodeJsonLine(value: unknown): string {
  const json = JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? `${BIGINT_TAG}${v}` : v));
  return `${json.replace(BIGINT_MARKER, '$1')}\n`;
}

/**
 * Connects a unix stream socket. Rejects with the raw system error (ENOENT, ECONNREFUSED, …) so each client can
 * map it to its own error code, or with an ETIMEDOUT error after `timeoutMs`.
 */
export function connectUnixSocket(path: string, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error(`connect ${path} timed out after ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    const onError = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      // the caller attaches its own 'error' listener before the next I/O callback can fire
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

/** True for the plain-object messages both protocols use. */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The slice of a pino logger the protocol clients use (a pino `Logger` fits as is). */
export interface ProtocolLogger {
  debug(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export const SILENT_LOGGER: ProtocolLogger = { debug: () => undefined, warn: () => undefined };
