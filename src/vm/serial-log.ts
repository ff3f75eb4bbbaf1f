import { open } from 'node:fs/promises';

/** The last `lines` lines of a serial log (read from its last 16 KiB), or '' when there is none. */
export async function serialTail(path: string, lines = 25): Promise<string> {
  let fh;
  try {
    fh = await open(path, 'r');
    const { size } = await fh.stat();
    const len = Math.min(size, 16 * 1024);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, size - len);
    // strip terminal control sequences the guest's console writes
    // eslint-disable-next-line no-control-regex
    const text = buf.toString('utf8').replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  } finally {
    await fh?.close();
  }
}
