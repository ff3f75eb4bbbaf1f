import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, readTokenFile } from '../config/index.js';
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
 * Abstract names have no permissions: any local user may bind one. So the name is not guessable from the data
 * dir alone (it hashes a random key kept private in `<home>/run/server-lock.key` with the dir's device and inode),
 * and a holder must prove it knows that key (HMAC of the asker's nonce) before its pid and URL are believed: a
 * squatter that learnt the name from /proc/net/unix can block a start (reported as such), never pose as the server.
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

/** The data dir's lock key: made once (O_EXCL, 0600; concurrent makers agree on the first), then read with the token checks. */
async function lockKey(root: string): Promise<string> {
  const run = join(root, 'run');
  await mkdir(run, { recursive: true, mode: PRIVATE_DIR_MODE });
  const path = join(run, 'server-lock.key');
  try {
    await writeFile(path, `${randomBytes(32).toString('hex')}\n`, { mode: PRIVATE_FILE_MODE, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return readTokenFile(path);
}

export async function lockNameFor(root: string, key: string): Promise<string> {
  const s = await stat(root);
  return `vmfork-serve-${createHash('sha256').update(`${key}\0${s.dev}\0${s.ino}`).digest('hex').slice(0, 40)}`;
}

const proofOf = (key: string, nonce: string): string => createHmac('sha256', key).update(nonce).digest('hex');

/** Takes the data dir's server lock, or throws VMFORK_SERVER_RUNNING with the holder's pid and URL. */
export async function acquireServerLock(root: string): Promise<ServerLock> {
  const key = await lockKey(root);
  const name = await lockNameFor(root, key);
  let url: string | null = null;
  for (let attempt = 1; attempt <= BIND_ATTEMPTS; attempt++) {
    const askers = new Set<Socket>();
    const server = createServer((c) => {
      askers.add(c.once('close', () => askers.delete(c)));
      answer(c, key, () => ({ pid: process.pid, url }));
    });
    const bound = await listenAbstract(server, name);
    if (bound) {
      // the lock must never be what keeps a process alive: the HTTP server (or a test's own work) does that
      server.unref();
      return {
        name,
        setUrl: (u) => void (url = u),
        release: () =>
          new Promise<void>((resolve) => {
            // close() waits for open connections: an asker that never hangs up must not hold the release
            server.close(() => resolve());
            for (const c of askers) c.destroy();
          }),
      };
    }
    const holder = await askHolder(name, key);
    if (holder === 'impostor') {
      throw new VmforkError('VMFORK_SERVER_RUNNING', `the lock of ${root} is held by a process that cannot prove it serves this data dir (another local user squatting its name?): find it with "ss -xlp | grep ${name}", or remove ${join(root, 'run', 'server-lock.key')} to pick a new name`, {
        details: { pid: null, url: null, home: root, squatted: true },
      });
    }
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

/** The holder's side: reads the asker's nonce line, answers pid, URL and the proof that it knows the key. */
function answer(c: Socket, key: string, holder: () => LockHolder): void {
  let text = '';
  c.on('error', () => undefined);
  c.setTimeout(ASK_TIMEOUT_MS, () => c.destroy());
  c.on('data', (d: Buffer) => {
    text += d.toString();
    const nl = text.indexOf('\n');
    if (nl > 128 || (nl < 0 && text.length > 128)) c.destroy();
    else if (nl >= 0) c.end(`${JSON.stringify({ ...holder(), proof: proofOf(key, text.slice(0, nl)) })}\n`);
  });
}

/**
 * The holder's answer; undefined if nobody holds the name any more (ECONNREFUSED) or it said nothing, 'impostor'
 * if it said something without the key's proof.
 */
export function askHolder(name: string, key: string): Promise<LockHolder | 'impostor' | undefined> {
  const nonce = randomBytes(16).toString('hex');
  return new Promise((resolve) => {
    const c = createConnection(`\0${name}`, () => c.write(`${nonce}\n`));
    let text = '';
    let connected = false;
    c.on('connect', () => void (connected = true));
    c.setTimeout(ASK_TIMEOUT_MS, () => c.destroy());
    c.on('data', (d: Buffer) => void (text += d.toString()));
    c.on('end', () => c.destroy());
    c.on('error', () => undefined);
    c.on('close', () => {
      // no answer at all: a holder dying right now (or a mute squatter: after BIND_ATTEMPTS it is reported as such)
      if (!connected || text === '') return resolve(undefined);
      let h: Partial<LockHolder & { proof: string }> | undefined;
      try {
        h = JSON.parse(text) as Partial<LockHolder & { proof: string }>;
      } catch {
        h = undefined;
      }
      if (!h || h.proof !== proofOf(key, nonce) || typeof h.pid !== 'number') return resolve('impostor');
      resolve({ pid: h.pid, url: typeof h.url === 'string' ? h.url : null });
    });
  });
}
