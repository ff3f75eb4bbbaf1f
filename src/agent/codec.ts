import { VmforkError } from '../errors.js';
import { HEADER_BYTES, MAX_PAYLOAD_BYTES, PROTOCOL_VERSION } from './protocol.js';

/** One frame: the 12-byte header's fields and the payload (guest/PROTOCOL.md, "Framing"). */
export interface Frame {
  version: number;
  type: number;
  id: number;
  payload: Buffer;
}

/** One TLV field of a payload; groups (steps, facts) hold further fields in `value`. */
export interface Field {
  tag: number;
  value: Buffer;
}

function protocolError(detail: string): VmforkError {
  return new VmforkError('VMFORK_AGENT_PROTOCOL', detail);
}

export function encodeFrame(type: number, id: number, payload: Buffer, version = PROTOCOL_VERSION): Buffer {
  if (payload.length > MAX_PAYLOAD_BYTES) throw new VmforkError('VMFORK_INVALID_ARGUMENT', `a payload of ${payload.length} bytes exceeds the limit of ${MAX_PAYLOAD_BYTES}`);
  const header = Buffer.alloc(HEADER_BYTES);
  header.write('VF', 0, 'latin1');
  header.writeUInt8(version, 2);
  header.writeUInt8(type, 3);
  header.writeUInt32BE(id >>> 0, 4);
  header.writeUInt32BE(payload.length, 8);
  return Buffer.concat([header, payload]);
}

export function encodeFields(fields: readonly Field[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of fields) {
    if (f.value.length > 0xffff) throw new VmforkError('VMFORK_INVALID_ARGUMENT', `field ${f.tag} holds ${f.value.length} bytes; a field holds at most 65535`);
    const head = Buffer.alloc(4);
    head.writeUInt16BE(f.tag, 0);
    head.writeUInt16BE(f.value.length, 2);
    parts.push(head, f.value);
  }
  return Buffer.concat(parts);
}

/** Every field of a payload (or of a group's value), in order; a field running past the end is a protocol error. */
export function decodeFields(payload: Buffer): Field[] {
  const fields: Field[] = [];
  let at = 0;
  while (at < payload.length) {
    if (payload.length - at < 4) throw protocolError(`a field header is cut off at byte ${at}`);
    const tag = payload.readUInt16BE(at);
    const len = payload.readUInt16BE(at + 2);
    if (payload.length - at - 4 < len) throw protocolError(`field ${tag} runs past the end of its payload`);
    fields.push({ tag, value: payload.subarray(at + 4, at + 4 + len) });
    at += 4 + len;
  }
  return fields;
}

export const field = {
  str: (tag: number, s: string): Field => ({ tag, value: Buffer.from(s, 'utf8') }),
  bytes: (tag: number, b: Buffer): Field => ({ tag, value: b }),
  u8: (tag: number, v: number): Field => ({ tag, value: Buffer.from([v]) }),
  u32: (tag: number, v: number): Field => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0);
    return { tag, value: b };
  },
  u64: (tag: number, v: bigint): Field => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(v);
    return { tag, value: b };
  },
};

/**
 * Splits a byte stream into frames. A header with the wrong magic or announcing more than MAX_PAYLOAD_BYTES is a
 * protocol error: what follows cannot be trusted to be a frame boundary. Nothing is ever buffered beyond one
 * maximal frame, whatever a guest announces.
 *
 * Before the first frame, `seekUntil` can skip bytes: a connection may start with the tail of a frame the agent
 * wrote for an earlier host connection, so the client skips to the answer to its own handshake.
 */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);
  private seek: ((frameHeader: { version: number; type: number; id: number }) => boolean) | undefined;
  /** Bytes skipped while seeking (for the log). */
  skipped = 0;

  seekUntil(accept: (frameHeader: { version: number; type: number; id: number }) => boolean): void {
    this.seek = accept;
  }

  get seeking(): boolean {
    return this.seek !== undefined;
  }

  push(chunk: Buffer): Frame[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const frames: Frame[] = [];
    for (;;) {
      if (this.seek && !this.skipToAccepted()) break;
      if (this.buf.length < HEADER_BYTES) break;
      if (this.buf[0] !== 0x56 || this.buf[1] !== 0x46) throw protocolError(`a frame starts with 0x${this.buf.subarray(0, 2).toString('hex')}, not "VF"`);
      const len = this.buf.readUInt32BE(8);
      if (len > MAX_PAYLOAD_BYTES) throw protocolError(`the guest announced a payload of ${len} bytes; the limit is ${MAX_PAYLOAD_BYTES}`);
      if (this.buf.length < HEADER_BYTES + len) break;
      frames.push({
        version: this.buf.readUInt8(2),
        type: this.buf.readUInt8(3),
        id: this.buf.readUInt32BE(4),
        payload: Buffer.from(this.buf.subarray(HEADER_BYTES, HEADER_BYTES + len)),
      });
      this.buf = this.buf.subarray(HEADER_BYTES + len);
    }
    return frames;
  }

  /** Drops bytes up to a header the seek predicate accepts; false while more bytes are needed to decide. */
  private skipToAccepted(): boolean {
    const accept = this.seek;
    if (!accept) return true;
    for (;;) {
      const at = this.buf.indexOf('VF', 0, 'latin1');
      const drop = at < 0 ? Math.max(0, this.buf.length - 1) : at;
      this.skipped += drop;
      this.buf = this.buf.subarray(drop);
      if (at < 0 || this.buf.length < HEADER_BYTES) return false;
      if (accept({ version: this.buf.readUInt8(2), type: this.buf.readUInt8(3), id: this.buf.readUInt32BE(4) })) {
        this.seek = undefined;
        return true;
      }
      this.skipped += 1;
      this.buf = this.buf.subarray(1);
    }
  }
}
