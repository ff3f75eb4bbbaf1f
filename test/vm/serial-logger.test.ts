import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, waitUntil } from '../../src/util/index.js';
import { serialLogCap, serialTail, startSerialLogger } from '../../src/vm/index.js';

// The serial logger against a stand-in for QEMU's serial chardev (a unix socket server); the real thing is in
// test/vm/serial-log.itest.ts.

const log = createLogger(undefined);

function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}

const waitGone = (pid: number): Promise<unknown> => waitUntil(() => gone(pid) || undefined, { deadlineMs: 20_000, everyMs: 20, what: `logger ${pid} to exit` });

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

test('copies the port into serial.log, rotating at half the cap: both files within the cap, the newest line last', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vmfork-serial-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const sock = join(dir, 'serial.sock');
  const file = join(dir, 'serial.log');
  writeFileSync(file, 'left by the previous boot\n');
  const connected = new Promise<Socket>((resolve) => {
    const server = createServer((s) => {
      server.close();
      resolve(s);
    });
    // the logger starts first and waits for the socket, as it does for a QEMU still starting
    setImmediate(() => server.listen(sock));
  });
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
