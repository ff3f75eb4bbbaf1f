import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMemoryMiB, parseSize } from '../../src/util/size.js';
import { VmforkError } from '../../src/errors.js';

test('parseSize accepts binary units and bare MiB', () => {
  assert.equal(parseSize('512M'), 512 * 1024 ** 2);
  assert.equal(parseSize('1G'), 1024 ** 3);
  assert.equal(parseSize('1.5GiB'), 1.5 * 1024 ** 3);
  assert.equal(parseSize('768'), 768 * 1024 ** 2);
  assert.equal(parseSize('4k'), 4096);
});

test('malformed sizes are VMFORK_INVALID_SIZE', () => {
  for (const bad of ['', 'abc', '12X', '-5M', '0', '1..2G', '5 M B']) {
    assert.throws(() => parseSize(bad), (e: unknown) => e instanceof VmforkError && e.code === 'VMFORK_INVALID_SIZE', bad);
  }
});

test('parseMemoryMiB wants whole MiB above a minimum', () => {
  assert.equal(parseMemoryMiB('512M'), 512);
  assert.equal(parseMemoryMiB('1G'), 1024);
  assert.throws(() => parseMemoryMiB('1000K'), /whole number of MiB/);
  assert.throws(() => parseMemoryMiB('16M'), /below the minimum/);
});
