import { statSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { waitUntil } from '../../src/util/index.js';

/**
 * A stand-in for QEMU's serial chardev (`-chardev socket,server=on`): a unix socket server taking one connection,
 * the serial logger's. `guest` is that connection (what the guest writes goes into it); `typed` collects what the
 * logger forwards to the port (viewers' keystrokes).
 */
export function fakeSerialPort(path: string, options: { listenLater?: boolean } = {}): { guest: Promise<Socket>; typed: Buffer[] } {
  const typed: Buffer[] = [];
  const guest = new Promise<Socket>((resolve) => {
    const server = createServer((s) => {
      server.close();
      s.on('data', (d: Buffer) => typed.push(d));
      resolve(s);
    });
    // later: the logger starts first and waits for the socket, as it does for a QEMU still starting
    if (options.listenLater) setImmediate(() => server.listen(path));
    else server.listen(path);
  });
  return { guest, typed };
}

export function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}

export const waitProcessGone = (pid: number, what = `process ${pid} to exit`): Promise<unknown> =>
  waitUntil(() => processGone(pid) || undefined, { deadlineMs: 20_000, everyMs: 20, what });

/** A file's size, 0 when it is missing (a log not rotated yet). */
export function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
