import { VmforkError } from '../errors.js';

/**
 * What a view-only screen drops: every message by which a viewer would act on the guest. `key` is RFB's KeyEvent
 * and QEMU's extended key event (255/0), `pointer` PointerEvent, `clipboard` ClientCutText (plain and extended),
 * `power` XVP (250: shutdown, reboot, reset), `resize` SetDesktopSize (251).
 */
export type DroppedKind = 'key' | 'pointer' | 'clipboard' | 'power' | 'resize';

/** The next step of the parser: `more` bytes of the message's head are needed first, or the whole message's size. */
type Step = { more: number } | { size: number; drop?: DroppedKind };

/**
 * The client-to-server messages QEMU 7.2 reads (ui/vnc.c, protocol_client_msg; RFC 6143 §7.5), by the size their
 * head gives. A type QEMU does not know would make it drop the client; here its length is unknowable, so the
 * stream cannot be followed past it: refused.
 */
function clientMessage(head: Buffer): Step {
  switch (head[0]) {
    case 0: // SetPixelFormat
      return { size: 20 };
    case 2: // SetEncodings: 4 + 4 per encoding
      return head.length < 4 ? { more: 4 } : { size: 4 + 4 * head.readUInt16BE(2) };
    case 3: // FramebufferUpdateRequest
      return { size: 10 };
    case 4: // KeyEvent
      return { size: 8, drop: 'key' };
    case 5: // PointerEvent
      return { size: 6, drop: 'pointer' };
    case 6: // ClientCutText: 8 + its length; a negative length is the extended clipboard's, of that many bytes
      return head.length < 8 ? { more: 8 } : { size: 8 + Math.abs(head.readInt32BE(4)), drop: 'clipboard' };
    case 250: // XVP
      return { size: 4, drop: 'power' };
    case 251: // SetDesktopSize: 8 + 16 per screen
      return head.length < 8 ? { more: 8 } : { size: 8 + 16 * head.readUInt8(6), drop: 'resize' };
    case 255: // QEMU's own messages, by subtype
      if (head.length < 2) return { more: 2 };
      if (head[1] === 0) return { size: 12, drop: 'key' }; // extended key event
      if (head[1] === 1) {
        // audio: enable (0) and disable (1) are 4 bytes, set-format (2) 10
        if (head.length < 4) return { more: 4 };
        const op = head.readUInt16BE(2);
        if (op === 0 || op === 1) return { size: 4 };
        if (op === 2) return { size: 10 };
      }
      throw refused(`QEMU client message 255 with subtype ${String(head[1])}${head[1] === 1 ? `/${head.readUInt16BE(2)}` : ''}`);
    default:
      throw refused(`client message type ${String(head[0])}`);
  }
}

function refused(what: string): VmforkError {
  return new VmforkError('VMFORK_INVALID_ARGUMENT', `view-only screen: ${what} is not an RFB message QEMU reads; the connection is closed`, { details: { what } });
}

const VERSION = /^RFB 003\.00(\d)\n$/;

/**
 * A view-only screen's filter of the viewer's RFB stream (client to server): the handshake passes — ProtocolVersion
 * (12 bytes), the security type (1 byte; none before RFB 3.7), ClientInit (1 byte) — then each message is passed
 * or dropped whole, by its type. Messages split over WebSocket frames in any way are followed; no more than a
 * message's head (at most 8 bytes) is held back, a dropped message's body is skipped as it arrives. A stream that
 * is not RFB as QEMU speaks it (a bad version, a security type other than None — QEMU's VNC here has no
 * password —, a message type QEMU does not read) throws VMFORK_INVALID_ARGUMENT: the caller closes the connection.
 */
export class RfbInputFilter {
  /** Messages dropped, by kind. */
  readonly dropped: Record<DroppedKind, number> = { key: 0, pointer: 0, clipboard: 0, power: 0, resize: 0 };
  /** Client messages passed to QEMU (the handshake not counted). */
  passed = 0;
  private phase: 'version' | 'security' | 'init' | 'messages' = 'version';
  private head = Buffer.alloc(0);
  private want = 12;
  /** Bytes of the current message still to pass (`keep`) or to skip. */
  private rest = 0;
  private keep = false;

  /** Total messages dropped. */
  get droppedCount(): number {
    return Object.values(this.dropped).reduce((a, b) => a + b, 0);
  }

  /** Feeds the next bytes from the viewer; returns those to send on to QEMU (possibly none). */
  push(chunk: Buffer): Buffer {
    const out: Buffer[] = [];
    let i = 0;
    while (i < chunk.length) {
      if (this.rest > 0) {
        const n = Math.min(this.rest, chunk.length - i);
        if (this.keep) out.push(chunk.subarray(i, i + n));
        this.rest -= n;
        i += n;
        continue;
      }
      const take = Math.min(this.want - this.head.length, chunk.length - i);
      this.head = Buffer.concat([this.head, chunk.subarray(i, i + take)]);
      i += take;
      if (this.head.length < this.want) break;
      this.step(out);
    }
    return Buffer.concat(out);
  }

  /** The head holds `want` bytes: take the next step of the handshake, or decide the message's fate. */
  private step(out: Buffer[]): void {
    const head = this.head;
    if (this.phase === 'version') {
      const m = VERSION.exec(head.toString('latin1'));
      const minor = m ? Number(m[1]) : NaN;
      if (![3, 4, 5, 7, 8].includes(minor)) throw refused(`protocol version ${JSON.stringify(head.toString('latin1'))}`);
      // 3.3 (and 3.4, 3.5, read as 3.3): the server names the security type, the client answers nothing
      this.phase = minor >= 7 ? 'security' : 'init';
      return this.handshake(out, 1);
    }
    if (this.phase === 'security') {
      if (head[0] !== 1) throw refused(`security type ${String(head[0])} (only None: the socket and the API's session are the guard)`);
      this.phase = 'init';
      return this.handshake(out, 1);
    }
    if (this.phase === 'init') {
      this.phase = 'messages';
      return this.handshake(out, 1);
    }
    const next = clientMessage(head);
    if ('more' in next) {
      this.want = next.more;
      return;
    }
    if (next.drop) this.dropped[next.drop] += 1;
    else {
      this.passed += 1;
      out.push(head);
    }
    this.keep = next.drop === undefined;
    this.rest = next.size - head.length;
    this.head = Buffer.alloc(0);
    this.want = 1;
  }

  private handshake(out: Buffer[], want: number): void {
    out.push(this.head);
    this.head = Buffer.alloc(0);
    this.want = want;
  }
}
