import { createServer } from 'node:net';
import { VmforkError } from '../errors.js';

/** `HOST:PORT` (`[::1]:8470` for IPv6); port 0 picks a free one. `example` goes into the error's text. */
export function parseListen(listen: string, example = '127.0.0.1:8470'): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(listen.trim());
  const port = Number(m?.[3]);
  if (!m || port > 65535) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `--listen must be HOST:PORT (e.g. ${example}), got "${listen}"`, { details: { listen } });
  }
  return { host: (m[1] ?? m[2]) as string, port };
}

/** A TCP port free on `host` now (the OS picks it; a process that binds it next may still race another). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const addr = s.address();
      s.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}
