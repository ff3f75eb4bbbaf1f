import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, waitUntil } from '../../src/util/index.js';
import { startSerialLogger } from '../../src/vm/index.js';
import { fakeSerialPort, processGone as gone, sizeOf, waitProcessGone } from '../helpers/fake-serial-port.js';

// The serial logger as the console hub (src/vm/serial-logger.ts) against a stand-in for QEMU's serial chardev:
// several viewers on its console socket, the log kept and capped beside them, a viewer that stops reading dropped
// without holding up the others. The real port is test/web/vm-streams.itest.ts's.

const log = createLogger(undefined);

/** A viewer on the hub: everything it received, and whether the hub closed it. */
interface Viewer {
  socket: Socket;
  bytes: () => Buffer;
  ended: () => boolean;
}

function viewer(path: string): Promise<Viewer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let ended = false;
    const socket = connect(path, () => resolve({ socket, bytes: () => Buffer.concat(chunks), ended: () => ended }));
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('close', () => (ended = true));
    socket.on('error', reject);
  });
}

const until = (what: string, fn: () => boolean, deadlineMs = 20_000): Promise<unknown> => waitUntil(() => fn() || undefined, { deadlineMs, everyMs: 10, what });

test('viewers of the console socket: each gets the log tail then the live output, any may type, a stalled one is dropped, the log stays capped', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vmfork-hub-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const tty = join(dir, 'tty.sock');
  const hub = join(dir, 'con.sock');
  const file = join(dir, 'serial.log');
  writeFileSync(file, 'left by the previous boot\n');
  const { guest: qemu, typed } = fakeSerialPort(tty);
  const cap = 64 * 1024;
  const pid = await startSerialLogger({ socket: tty, log: file, console: hub, qemuPid: process.pid, maxBytes: cap, logger: log });
  assert.ok(pid);
  t.after(() => {
    if (!gone(pid)) process.kill(pid);
  });
  const guest = await qemu;
  guest.write('early\r\n');
  await until('the early line in serial.log', () => readFileSync(file, 'utf8').includes('early'));
  await until('the console socket', () => existsSync(hub));
  const st = statSync(hub);
  assert.ok(st.isSocket());
  assert.equal(st.mode & 0o777, 0o600, 'only its owner may connect');
  assert.equal(st.uid, process.getuid?.(), "vmfork's own uid, not QEMU's");

  const a = await viewer(hub);
  const b = await viewer(hub);
  const tail = 'left by the previous boot\nearly\r\n';
  for (const v of [a, b]) await until('the tail', () => v.bytes().toString() === tail);
  guest.write('live\r\n');
  for (const v of [a, b]) await until('the live line', () => v.bytes().toString() === `${tail}live\r\n`);

  a.socket.write('hostname\n');
  await until('the keystrokes of a at QEMU', () => Buffer.concat(typed).toString() === 'hostname\n');
  b.socket.write('x');
  await until('the keystrokes of b at QEMU', () => Buffer.concat(typed).toString() === 'hostname\nx');

  // c stops reading: the hub buffers for it up to 1 MiB, then drops it; a and b keep up with 3 MiB meanwhile
  const c = await viewer(hub);
  await until('the tail at c', () => c.bytes().length >= tail.length);
  c.socket.pause();
  const before = a.bytes().length;
  const line = `${'x'.repeat(1000)}\r\n`;
  const total = 3 * 1024 * 1024;
  for (let sent = 0; sent < total; sent += line.length) {
    if (!guest.write(line)) await new Promise((r) => guest.once('drain', r));
  }
  guest.write('marker\r\n');
  const expected = Math.ceil(total / line.length) * line.length + 'marker\r\n'.length;
  for (const v of [a, b]) await until('all of the flood at a and b', () => v.bytes().length - before === expected, 60_000);
  assert.ok(b.bytes().toString().endsWith('marker\r\n'));
  c.socket.resume();
  await until('c dropped', () => c.ended());
  assert.ok(c.bytes().length < before + expected, `c got ${c.bytes().length} bytes: it was dropped before the end`);

  const logged = sizeOf(file) + sizeOf(`${file}.1`);
  assert.ok(logged <= cap, `serial.log + serial.log.1 = ${logged} bytes > ${cap}`);
  assert.ok(readFileSync(file, 'utf8').endsWith('marker\r\n'), 'serial.log ends with the newest line');

  guest.end(); // QEMU exited: the hub closes its viewers, removes its socket and ends
  await waitProcessGone(pid, 'the hub to exit');
  for (const v of [a, b]) await until('the viewer closed', () => v.ended());
  assert.equal(existsSync(hub), false, 'its socket is removed');
});

test('a symlink planted where serial.log goes is not followed (the VM directory is the QEMU uid\'s)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vmfork-hub-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const victim = join(dir, 'host-file');
  writeFileSync(victim, 'host\n');
  const tty = join(dir, 'tty.sock');
  const file = join(dir, 'serial.log');
  symlinkSync(victim, file);
  const { guest: qemu } = fakeSerialPort(tty);
  const pid = await startSerialLogger({ socket: tty, log: file, console: join(dir, 'con.sock'), qemuPid: process.pid, logger: log });
  assert.ok(pid);
  const guest = await qemu;
  guest.on('error', () => undefined); // the logger is gone at once
  guest.write('guest bytes\n');
  await waitProcessGone(pid, 'the logger to refuse the link and exit');
  guest.destroy();
  assert.equal(readFileSync(victim, 'utf8'), 'host\n');
});
