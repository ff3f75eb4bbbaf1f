import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JsonLineDecoder, encodeJsonLine, type Frame } from '../../src/qemu/json-line-stream.js';

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
  assert.deepEqual(frames, [{ type: 'sentinel' }, { type: 'message', value: { return: 5 } }]);
});

test('without sentinel, 0xFF is just part of a garbage line', () => {
  const frames = new JsonLineDecoder().push(Buffer.concat([Buffer.from([0xff]), Buffer.from('{"x":1}\n')]));
  assert.deepEqual(frames.map((f) => f.type), ['garbage']);
});

test('an over-long line is dropped as garbage without buffering it all', () => {
  const d = new JsonLineDecoder({ maxLineBytes: 8 });
  assert.deepEqual(d.push(Buffer.from('{"long": "xxxx')), []);
  const frames = d.push(Buffer.from('xxxxxx"}\n{"a":1}\n'));
  assert.equal(frames[0]?.type, 'garbage');
  assert.deepEqual(messages(frames), [{ a: 1 }]);
});

test('encodeJsonLine writes bigints as exact integers and ends with a newline', () => {
  assert.equal(encodeJsonLine({ time: 1_764_000_000_123_456_789n, s: 'bigint-x:1' }), '{"time":1764000000123456789,"s":"bigint-x:1"}\n');
});
