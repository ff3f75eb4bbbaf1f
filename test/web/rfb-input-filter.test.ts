import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isVmforkError } from '../../src/errors.js';
import { RfbInputFilter } from '../../src/web/index.js';

// The view-only screen's filter of a viewer's RFB stream (src/web/rfb-input-filter.ts), message by message and split
// across frames at every byte.

const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const s32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const bytes = (...parts: (number[] | Buffer)[]): Buffer => Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p))));

const HANDSHAKE = bytes(Buffer.from('RFB 003.008\n'), [1], [1]); // version, security None, ClientInit shared

const kept = {
  setPixelFormat: bytes([0, 0, 0, 0], [32, 24, 0, 1], u16(255), u16(255), u16(255), [16, 8, 0], [0, 0, 0]),
  setEncodings: bytes([2, 0], u16(3), s32(0), s32(-223), s32(-239)),
  noEncodings: bytes([2, 0], u16(0)),
  updateRequest: bytes([3, 1], u16(0), u16(0), u16(720), u16(400)),
  audioEnable: bytes([255, 1], u16(0)),
  audioFormat: bytes([255, 1], u16(2), [3, 2], u32(44100)),
};
const droppedKinds = {
  key: bytes([4, 1, 0, 0], u32(0x61)),
  pointer: bytes([5, 1], u16(10), u16(20)),
  cutText: bytes([6, 0, 0, 0], u32(5), Buffer.from('hello')),
  extendedClipboard: bytes([6, 0, 0, 0], s32(-8), u32(0x10000000), Buffer.from('caps')),
  qemuKey: bytes([255, 0], u16(1), u32(0x61), u32(0x1e)),
  xvp: bytes([250, 0, 1, 2]),
  setDesktopSize: bytes([251, 0], u16(1024), u16(768), [1, 0], Buffer.alloc(16, 7)),
};

/** Feeds `input` in pieces of `size` bytes; the bytes passed on. */
function run(filter: RfbInputFilter, input: Buffer, size: number): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; i < input.length; i += size) out.push(filter.push(input.subarray(i, i + size)));
  return Buffer.concat(out);
}

test('the handshake and display messages pass, byte for byte; keys, pointer, clipboard, power and resize are dropped whole', () => {
  const stream = bytes(
    HANDSHAKE,
    kept.setPixelFormat,
    droppedKinds.key,
    kept.setEncodings,
    droppedKinds.pointer,
    kept.updateRequest,
    droppedKinds.cutText,
    droppedKinds.extendedClipboard,
    kept.noEncodings,
    droppedKinds.qemuKey,
    droppedKinds.xvp,
    kept.audioEnable,
    droppedKinds.setDesktopSize,
    kept.audioFormat,
    kept.updateRequest,
  );
  const expected = bytes(HANDSHAKE, kept.setPixelFormat, kept.setEncodings, kept.updateRequest, kept.noEncodings, kept.audioEnable, kept.audioFormat, kept.updateRequest);
  // whole, then split at every size from 1 byte: a message's head may arrive a byte at a time
  for (const size of [stream.length, 1, 2, 3, 5, 7, 11, 13]) {
    const filter = new RfbInputFilter();
    assert.deepEqual(run(filter, stream, size), expected, `in pieces of ${size}`);
    assert.deepEqual(filter.dropped, { key: 2, pointer: 1, clipboard: 2, power: 1, resize: 1 });
    assert.equal(filter.droppedCount, 7);
    assert.equal(filter.passed, 7);
  }
});

test('a dropped message\'s body is skipped as it arrives, however long; a message after it passes', () => {
  const filter = new RfbInputFilter();
  assert.deepEqual(filter.push(HANDSHAKE), HANDSHAKE);
  const big = 300_000;
  assert.equal(filter.push(bytes([6, 0, 0, 0], u32(big))).length, 0);
  for (let sent = 0; sent < big; sent += 65_536) assert.equal(filter.push(Buffer.alloc(Math.min(65_536, big - sent), 0x41)).length, 0);
  assert.deepEqual(filter.push(kept.updateRequest), kept.updateRequest);
  assert.equal(filter.dropped.clipboard, 1);
});

test('RFB 3.3 has no security byte from the client', () => {
  const filter = new RfbInputFilter();
  const stream = bytes(Buffer.from('RFB 003.003\n'), [1], droppedKinds.key, kept.updateRequest);
  assert.deepEqual(run(filter, stream, 1), bytes(Buffer.from('RFB 003.003\n'), [1], kept.updateRequest));
  assert.equal(filter.dropped.key, 1);
});

test('what is not RFB as QEMU reads it is refused: the caller closes the connection', () => {
  const refuses = (stream: Buffer, why: RegExp): void => {
    const filter = new RfbInputFilter();
    assert.throws(() => run(filter, stream, 1), (err: unknown) => isVmforkError(err) && err.code === 'VMFORK_INVALID_ARGUMENT' && why.test(err.message));
  };
  refuses(Buffer.from('GET / HTTP/1.1\r\n'), /protocol version/);
  refuses(Buffer.from('RFB 004.000\n'), /protocol version/);
  refuses(bytes(Buffer.from('RFB 003.008\n'), [2]), /security type 2/);
  refuses(bytes(HANDSHAKE, [150, 0, 0, 0, 0, 0, 0, 0, 0, 0]), /client message type 150/);
  refuses(bytes(HANDSHAKE, [255, 7]), /255 with subtype 7/);
  refuses(bytes(HANDSHAKE, [255, 1], u16(9)), /255 with subtype 1\/9/);
});
