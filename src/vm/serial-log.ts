import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

const TAIL_BYTES = 16 * 1024;

/**
 * The last `lines` lines of a serial log (read from its last 16 KiB), or '' when there is none. The logger rotates
 * `serial.log` to `serial.log.1` at half its cap (serial-logger.ts): when the current file holds less than 16 KiB,
 * the end of the previous one comes first.
 */
export async function serialTail(path: string, lines = 25): Promise<string> {
  const current = await lastBytes(path, TAIL_BYTES);
  const before = current.length < TAIL_BYTES ? await lastBytes(`${path}.1`, TAIL_BYTES - current.length) : Buffer.alloc(0);
  // strip terminal control sequences the guest's console writes
  // eslint-disable-next-line no-control-regex
  const text = Buffer.concat([before, current]).toString('utf8').replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

async function lastBytes(path: string, max: number): Promise<Buffer> {
  let fh;
  try {
    // the VM's directory is its QEMU's uid's: a link planted there must not show a host file in an error message
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    const { size } = await fh.stat();
    const len = Math.min(size, max);
    const buf = Buffer.alloc(len);
    const { bytesRead } = await fh.read(buf, 0, len, size - len);
    return buf.subarray(0, bytesRead);
  } catch {
    return Buffer.alloc(0);
  } finally {
    await fh?.close();
  }
}
