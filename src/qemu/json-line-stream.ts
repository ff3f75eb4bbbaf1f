import { randomBytes } from 'node:crypto';
import { createConnection, type Socket } from 'node:net';

/**
 * Framing shared by the QMP and guest-agent clients. Both peers write one JSON object per line (QEMU ends each
 * message with CRLF, qemu-ga with LF; neither ever puts a raw newline inside a message). The guest agent may
 * also write a 0xFF byte right before the reply to `guest-sync-delimited`: 0xFF never occurs in UTF-8 text, so
 * it marks the point where everything received before it (a half-read stale reply) must be thrown away.
 */
export type Frame =
  /** One parsed JSON value (any JSON: the client decides whether its shape makes sense); `bytes`: its line's length. */
  | { type: 'message'; value: unknown; bytes: number }
  /**
   * A line that is not JSON, or one past the cap; `text` is its beginning, for the log. An over-long line comes out
   * once, the moment it passes the cap (a peer that never writes a newline is still seen), and the rest of it up to
   * its newline is skipped without being buffered.
   */
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
   * A line longer than this is dropped as garbage instead of growing memory without bound. Each client passes the
   * cap of its protocol (QMP_MAX_LINE_BYTES, GUEST_AGENT_MAX_LINE_BYTES).
   * @default QMP_MAX_LINE_BYTES
   */
  maxLineBytes?: number;
}

/**
 * The longest line QEMU's monitor sends us. The largest reply vmfork asks for is `query-block`, which nests the
 * whole backing chain of every disk: on QEMU 7.2, 1.2 KiB for a disk on one backing file and 9.0 KiB for a chain of
 * 21 images (about 0.4 KiB an image), so 1 MiB holds thousands of images; the greeting, events and every other
 * reply are a few hundred bytes (docs/launcher.md, "Bounds").
 */
export const QMP_MAX_LINE_BYTES = 1024 * 1024;

/**
 * The longest line qemu-ga sends us: `guest-exec-status` carries stdout and stderr, each up to 16 MiB in qemu-ga
 * (GUEST_EXEC_MAX_OUTPUT), as base64: 2 × 22,369,624 bytes plus a few hundred of JSON = 42.7 MiB. guest-file-read
 * chunks are capped below that (guest-agent-ops.ts). 43 MiB leaves room for the JSON around the two strings.
 */
export const GUEST_AGENT_MAX_LINE_BYTES = 43 * 1024 * 1024;

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
    this.maxLineBytes = options.maxLineBytes ?? QMP_MAX_LINE_BYTES;
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
        const overflow = this.append(chunk.subarray(start, lf));
        if (overflow) frames.push(overflow);
        const frame = this.takeLine();
        if (frame) frames.push(frame);
        start = lf + 1;
      } else {
        const overflow = this.append(chunk.subarray(start));
        if (overflow) frames.push(overflow);
        break;
      }
    }
    return frames;
  }

  /** Buffers part of the current line; returns the garbage frame when this part takes the line past the cap. */
  private append(bytes: Buffer): Frame | undefined {
    if (this.overflowed || bytes.length === 0) return undefined;
    if (this.size + bytes.length > this.maxLineBytes) {
      const text = Buffer.concat([...this.parts, bytes.subarray(0, GARBAGE_PREVIEW)]).subarray(0, GARBAGE_PREVIEW).toString('utf8');
      this.overflowed = true;
      this.parts = [];
      this.size = 0;
      return { type: 'garbage', text, error: `line longer than ${this.maxLineBytes} bytes` };
    }
    this.parts.push(bytes);
    this.size += bytes.length;
    return undefined;
  }

  private takeLine(): Frame | undefined {
    if (this.overflowed) {
      this.reset(); // already reported when it passed the cap
      return undefined;
    }
    const bytes = this.size;
    const text = Buffer.concat(this.parts, this.size).toString('utf8').trim();
    this.reset();
    if (text === '') return undefined;
    try {
      return { type: 'message', value: JSON.parse(text) as unknown, bytes };
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
