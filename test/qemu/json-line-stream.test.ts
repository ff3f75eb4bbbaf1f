import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GUEST_AGENT_MAX_LINE_BYTES, JsonLineDecoder, QMP_MAX_LINE_BYTES, encodeJsonLine, type Frame } from '../../src/qemu/json-line-stream.js';

const messages = (frames: Frame[]): unknown[] => frames.filter((f) => f.type === 'message').map((f) => (f as { value: unknown }).value);

test('reassembles lines split across chunks; CRLF and blank lines are fine', () => {
  const d = new JsonLineDecoder();
  assert.deepEqual(d.push(Buffer.from('{"a":')), []);
  assert.deepEqual(messages(d.push(Buffer.from('1}\r\n\r\n{"b":2}\n{"c"'))), [{ a: 1 }, { b: 2 }]);
  assert.deepEqual(messages(d.push(Buffer.from(':3}\n'))), [{ c: 3 }]);
});

test('a multi-byte UTF-8 character split between chunks survives', () => {
  const d = new JsonLineDecoder();
  const bytes = Buffer.from('{"s":"é€"}\n');
  assert.deepEqual(messages([...d.push(bytes.subarray(0, 7)), ...d.push(bytes.subarray(7))]), [{ s: 'é€' }]);
});

test('unparseable lines come out as garbage, and decoding goes on', () => {
  const frames = new JsonLineDecoder().push(Buffer.from('nope\n{"ok":true}\n'));
  assert.equal(frames[0]?.type, 'garbage');
  assert.deepEqual(messages(frames), [{ ok: true }]);
});

test('with sentinel on, 0xFF drops the partial line before it', () => {
  const d = new JsonLineDecoder({ sentinel: true });
  d.push(Buffer.from('{"return": {"half'));
  const frames = d.push(Buffer.concat([Buffer.from([0xff]), Buffer.from('{"return": 5}\n')]));
  assert.deepEqual(frames, [{ type: 'sentinel' }, { type: 'message', value: { return: 5 }, bytes: 13 }]);
});

test('without sentinel, 0xFF is just part of a garbage line', () => {
  const frames = new JsonLineDecoder().push(Buffer.concat([Buffer.from([0xff]), Buffer.from('{"x":1}\n')]));
  assert.deepEqual(frames.map((f) => f.type), ['garbage']);
});

test('an over-long line is garbage once, the moment it passes the cap, and its rest is skipped unbuffered', () => {
  const d = new JsonLineDecoder({ maxLineBytes: 8 });
  assert.deepEqual(d.push(Buffer.from('{"lo')), []);
  const over = d.push(Buffer.from('ng": "xxxx'));
  assert.deepEqual(over.map((f) => f.type), ['garbage'], 'reported before any newline: a peer that never ends its line is seen');
  assert.equal(over[0]?.type === 'garbage' && over[0].text, '{"long": "xxxx');
  assert.deepEqual(d.push(Buffer.alloc(1 << 20, 0x78)), [], 'a megabyte more of the same line: nothing more, nothing kept');
  const frames = d.push(Buffer.from('xxxxxx"}\n{"a":1}\n'));
  assert.deepEqual(frames, [{ type: 'message', value: { a: 1 }, bytes: 7 }]);
});

test('a line of exactly the cap is a message; one byte more is garbage', () => {
  const line = '{"a":"xxx"}'; // 11 bytes
  assert.deepEqual(new JsonLineDecoder({ maxLineBytes: 11 }).push(Buffer.from(`${line}\n`)), [{ type: 'message', value: { a: 'xxx' }, bytes: 11 }]);
  assert.deepEqual(new JsonLineDecoder({ maxLineBytes: 10 }).push(Buffer.from(`${line}\n`)).map((f) => f.type), ['garbage']);
});

test('the caps fit the largest replies vmfork asks for', () => {
  // guest-exec-status with both streams at qemu-ga's 16 MiB limit (GUEST_EXEC_MAX_OUTPUT), base64
  const b64 = 'A'.repeat(Math.ceil((16 * 1024 * 1024) / 3) * 4);
  const status = `{"return": {"exitcode": 0, "out-data": "${b64}", "err-data": "${b64}", "out-truncated": true, "err-truncated": true, "exited": true}}`;
  assert.ok(status.length <= GUEST_AGENT_MAX_LINE_BYTES, `${status.length} > ${GUEST_AGENT_MAX_LINE_BYTES}`);
  assert.ok(GUEST_AGENT_MAX_LINE_BYTES - status.length < 1024 * 1024, 'and the cap is near it, not far above');
  // the largest chunk guestReadFile asks for (16 MiB) as guest-file-read's reply
  const read = `{"return": {"count": ${16 * 1024 * 1024}, "buf-b64": "${b64}", "eof": false}}`;
  assert.ok(read.length <= GUEST_AGENT_MAX_LINE_BYTES);
  assert.ok(QMP_MAX_LINE_BYTES >= 1024 * 1024);
});

test('encodeJsonLine writes bigints as exact integers and ends with a newline', () => {
  assert.equal(encodeJsonLine({ time: 1_764_000_000_123_456_789n, s: 'bigint-x:1' }), '{"time":1764000000123456789,"s":"bigint-x:1"}\n');
});
