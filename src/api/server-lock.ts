import { stat } from 'node:fs/promises';
import { createConnection, createServer, type Server } from 'node:net';
import { VmforkError } from '../errors.js';

/**
 * One `vmfork serve` per data dir (issue 13): two servers would both resume the same tasks.
 *
 * The lock is a unix socket in Linux's ABSTRACT namespace, bound for the server's whole life and named from the
 * data dir's device and inode (so `--home /a` and a symlink to it are one lock). Why this and not a pid file or
 * flock: Node has no flock/fcntl lock, and a pid file outlives a `kill -9` and must then be judged stale by a pid
 * that may be reused. An abstract socket has no file: the kernel frees the name when the last descriptor closes,
 * i.e. when the process dies however it dies. libuv opens sockets close-on-exec, so the QEMU processes the server
 * spawns never inherit (and keep) it. The holder also answers on it: a second server connects and reads the
 * first one's pid and URL, live, instead of trusting a file.
 *
 * Limit: abstract names are per network namespace. Servers started in different network namespaces on one data
 * dir do not see each other's lock (vmfork itself runs in the host's namespace; docs/data-dir.md).
 */
export interface ServerLock {
  /** The abstract name (without its leading NUL), for logs. */
  readonly name: string;
  /** What a second server is told once this one listens. */
  setUrl(url: string): void;
  release(): Promise<void>;
}

export interface LockHolder {
  pid: number;
  /** null while the holder is still starting (before it listens). */
  url: string | null;
}

/** How long a second server waits for the holder's answer (it only writes one line). */
const ASK_TIMEOUT_MS = 5_000;
/** Binding is retried when the holder vanished between our bind and our question; more means a race that keeps losing. */
const BIND_ATTEMPTS = 3;

export async function lockNameFor(root: string): Promise<string> {
  const s = await stat(root);
  return `vmfork-serve-${s.dev}-${s.ino}`;
}

/** Takes the data dir's server lock, or throws VMFORK_SERVER_RUNNING with the holder's pid and URL. */
export async function acquireServerLock(root: string): Promise<ServerLock> {
  const name = await lockNameFor(root);
  let url: string | null = null;
  for (let attempt = 1; attempt <= BIND_ATTEMPTS; attempt++) {
    const server = createServer((c) => {
      c.on('error', () => undefined);
      c.end(`${JSON.stringify({ pid: process.pid, url } satisfies LockHolder)}\n`);
    });
    const bound = await listenAbstract(server, name);
    if (bound) {
      // the lock must never be what keeps a process alive: the HTTP server (or a test's own work) does that
      server.unref();
      return {
        name,
        setUrl: (u) => void (url = u),
        release: () => new Promise<void>((resolve) => server.close(() => resolve())),
      };
    }
    const holder = await askHolder(name);
    if (holder) {
      const where = holder.url ?? 'still starting, no URL yet';
      throw new VmforkError('VMFORK_SERVER_RUNNING', `pid ${holder.pid} serves ${root} (${where}): use it, or stop it first`, {
        details: { pid: holder.pid, url: holder.url, home: root },
      });
    }
  }
  throw new VmforkError('VMFORK_SERVER_RUNNING', `the lock of ${root} is held, but its holder does not answer (a server starting or stopping right now?)`, {
    details: { pid: null, url: null, home: root },
  });
}

/** true when bound; false when the name is taken (EADDRINUSE); other errors are thrown. */
function listenAbstract(server: Server, name: string): Promise<boolean> {
  return new Promise<boolean>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' ? resolve(false) : reject(err)));
    server.listen(`\0${name}`, () => resolve(true));
  });
}

/** The holder's answer; undefined if nobody holds the name any more (ECONNREFUSED) or it said nothing usable. */
export function askHolder(name: string): Promise<LockHolder | undefined> {
  return new Promise<LockHolder | undefined>((resolve) => {
    const c = createConnection(`\0${name}`);
    let text = '';
    c.setTimeout(ASK_TIMEOUT_MS, () => c.destroy());
    c.on('data', (d: Buffer) => void (text += d.toString()));
    c.on('error', () => undefined);
    c.on('close', () => {
      try {
        const h = JSON.parse(text) as Partial<LockHolder>;
        resolve(typeof h.pid === 'number' ? { pid: h.pid, url: typeof h.url === 'string' ? h.url : null } : undefined);
      } catch {
        resolve(undefined);
      }
    });
  });
}
