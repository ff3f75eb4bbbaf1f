import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VmforkError } from '../src/errors.js';
import { freePort, waitUntil } from '../src/util/index.js';

/** dist/bench/ → dist/src/cli/main.js: the real server, as `vmfork serve` runs it. */
const CLI = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');

/**
 * Each child's overlay counts at its full possible size (the image's 2 GiB + its disks), so at the default 1.0 a
 * datastore of ~80 GiB holds ~37 children; idle forked children write a few MiB each, hence 4.
 */
const DISK_OVERCOMMIT = 4;

/** `vmfork serve` on a bench's data dir, in its own process, and a client that times each call. */
export interface BenchServer {
  pid: number;
  url: string;
  call<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T; ms: number }>;
  /** SIGTERM, then waits for the exit (its VMs stay up: the bench's cleanup destroys them). */
  stop(): Promise<void>;
}


export async function startBenchServer(root: string): Promise<BenchServer> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(process.execPath, [CLI, '--home', root, 'serve', '--listen', `127.0.0.1:${port}`, '--disk-overcommit', String(DISK_OVERCOMMIT)], { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));
  await waitUntil(
    async () => {
      if (gone) throw new VmforkError('VMFORK_INTERNAL', `vmfork serve exited before answering on ${url}`);
      return fetch(`${url}/healthz`).then((r) => r.ok, () => false);
    },
    { deadlineMs: 60_000, everyMs: 200, what: `vmfork serve on ${url}` },
  );
  const token = (await readFile(join(root, 'api-token'), 'utf8')).trim();
  return {
    pid: child.pid ?? 0,
    url,
    async call<T>(method: string, path: string, body?: unknown) {
      const t0 = performance.now();
      const r = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const parsed = (await r.json()) as T;
      return { status: r.status, body: parsed, ms: performance.now() - t0 };
    },
    async stop() {
      if (gone) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}
