import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../src/util/index.js';
import { serialLogCap, serialTail, startSerialLogger } from '../../src/vm/index.js';
import { fakeSerialPort, sizeOf, waitProcessGone as waitGone } from '../helpers/fake-serial-port.js';

// The serial logger against a stand-in for QEMU's serial chardev (a unix socket server); the real thing is in
// test/vm/serial-log.itest.ts.

const log = createLogger(undefined);

test('copies the port into serial.log, rotating at half the cap: both files within the cap, the newest line last', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vmfork-serial-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const sock = join(dir, 'serial.sock');
  const file = join(dir, 'serial.log');
  writeFileSync(file, 'left by the previous boot\n');
  // the logger starts first and waits for the socket, as it does for a QEMU still starting
  const { guest: connected } = fakeSerialPort(sock, { listenLater: true });
  const cap = 64 * 1024;
  const pid = await startSerialLogger({ socket: sock, log: file, qemuPid: process.pid, maxBytes: cap, logger: log });
  assert.ok(pid);
  const guest = await connected;
  const lines = Array.from({ length: 5_000 }, (_, i) => `line ${i} of a guest writing fast to its console`);
  for (const line of lines) guest.write(`${line}\r\n`);
  guest.end(); // QEMU exited
  await waitGone(pid);
  const total = sizeOf(file) + sizeOf(`${file}.1`);
  assert.ok(total <= cap, `serial.log + serial.log.1 = ${total} bytes > ${cap}`);
  assert.ok(sizeOf(file) <= cap / 2);
  assert.ok(readFileSync(file, 'utf8').endsWith(`${lines.at(-1)}\r\n`), 'serial.log ends with the newest line');
  const tail = (await serialTail(file, 300)).split('\n');
  assert.deepEqual(tail, lines.slice(-300), 'the tail runs across the rotation without a gap');
});

test('gives up when QEMU is gone before its socket ever listened', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vmfork-serial-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const dead = spawn('true');
  await new Promise((resolve) => dead.once('exit', resolve));
  const pid = await startSerialLogger({ socket: join(dir, 'serial.sock'), log: join(dir, 'serial.log'), qemuPid: dead.pid as number, logger: log });
  assert.ok(pid);
  await waitGone(pid);
});

test('the cap: VMFORK_SERIAL_LOG_BYTES when it is a whole number, at least 8 KiB; 2 MiB otherwise', () => {
  assert.equal(serialLogCap({}), 2 * 1024 * 1024);
  assert.equal(serialLogCap({ VMFORK_SERIAL_LOG_BYTES: '65536' }), 65536);
  assert.equal(serialLogCap({ VMFORK_SERIAL_LOG_BYTES: '100' }), 8192);
  assert.equal(serialLogCap({ VMFORK_SERIAL_LOG_BYTES: '1e9x' }), 2 * 1024 * 1024);
});
