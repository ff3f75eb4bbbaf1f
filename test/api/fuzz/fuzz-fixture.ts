import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import Database from 'better-sqlite3';
import type { FastifyInstance } from 'fastify';
import { buildApp, ensureApiToken } from '../../../src/api/index.js';
import { homeLayout } from '../../../src/config/index.js';
import { actorFor, registerLocalHost } from '../../../src/host/index.js';
import { DEFAULT_NETWORK } from '../../../src/network/index.js';
import { createProvisionService } from '../../../src/pool/index.js';
import { insertImage, insertNetwork, openStore } from '../../../src/store/index.js';
import { cancelTask, drainTasks } from '../../../src/task/index.js';
import { createLogger, waitUntil } from '../../../src/util/index.js';
import type { VmDeps } from '../../../src/vm/index.js';
import { ScriptedParts } from '../../pool/scripted-parts.js';
import { OpenApiChecker } from '../openapi-check.js';

/** What a fuzzed request can have changed: the store (its data version, each table's last row) and the data dir's files (path, size, mtime). */
export type Snapshot = Map<string, string>;

export interface FuzzFixture {
  deps: VmDeps;
  app: FastifyInstance;
  token: string;
  checker: OpenApiChecker;
  parts: ScriptedParts;
  snapshot(): Promise<Snapshot>;
  /** Waits until no task is live (a task still live after `patienceMs` is cancelled and waited for), then reconciles the VMs. */
  settle(): Promise<void>;
  close(): Promise<void>;
}

const LIVE = ['queued', 'running', 'cancelling'];
// the store's own files: their content is compared through the tables (a read may touch the WAL index)
const STORE_FILE = /\.db(-wal|-shm|-journal)?$/;

async function listFiles(root: string, dir = root, out: string[] = []): Promise<string[]> {
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      out.push(`${relative(root, path)}/`);
      await listFiles(root, path, out);
    } else if (!STORE_FILE.test(e.name)) {
      const s = await stat(path).catch(() => undefined);
      out.push(`${relative(root, path)} ${s?.size ?? '?'} ${s?.mtimeMs ?? '?'}`);
    }
  }
  return out;
}

/**
 * The real API (the real provisioning engine and task engine over a real store in a temp dir) with the QEMU work
 * scripted (test/pool/scripted-parts.ts): no QEMU starts, accepted work runs against the store only. The default
 * network's record names a namespace that does not exist, so nothing the server does reaches the host's network.
 */
export async function fuzzFixture(options: { patienceMs?: number } = {}): Promise<FuzzFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'vmfork-fuzz-'));
  // SQLite only, also under scripts/test-pg.sh: "a refusal wrote nothing" is read from SQLite's data_version and
  // rowids below (exact, and cheap enough for thousands of requests); the routes reach the store through the same
  // repos either way, and those run on PostgreSQL in the store's, pool's and API fixture's tests
  const home = homeLayout(dir, {});
  const db = await openStore(home.db);
  const deps: VmDeps = { db, home, log: createLogger(undefined) };
  await registerLocalHost(deps);
  const now = new Date().toISOString();
  await insertImage(db, { name: 'default', source: 'imported', state: 'ready', disk_path: join(home.images, 'default', 'disk.qcow2'), kernel_path: null, initrd_path: null, manifest_path: null, recipe_hash: null, virtual_size: 1 << 30, file_size: 1 << 20, created_at: now }, await actorFor('image-import'));
  await insertNetwork(db, { name: DEFAULT_NETWORK.name, cidr: DEFAULT_NETWORK.cidr, netns: `vmfork-fuzz-absent-${process.pid}`, bridge: 'br-fuzz', gateway: '10.231.0.1', owner_id: 'fuzz', state: 'ready', created_at: now, updated_at: now }, await actorFor('network-create'));
  const { token } = await ensureApiToken(home);
  const parts = new ScriptedParts();
  // a built console (a stand-in index.html): a stray path that normalizes to a page ('/v1/%2e%2e/' is '/') gets it
  const webRoot = await mkdtemp(join(tmpdir(), 'vmfork-fuzz-web-'));
  await writeFile(join(webRoot, 'index.html'), '<!doctype html><title>vmfork</title>');
  const app = buildApp({ deps, provision: createProvisionService(deps, parts), token, webRoot });
  const checker = await OpenApiChecker.load(app, token);
  const reader = new Database(home.db, { readonly: true, fileMustExist: true });
  const tables = (reader.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((t) => t.name);
  const liveTasks = reader.prepare(`SELECT id FROM tasks WHERE state IN (${LIVE.map(() => '?').join(', ')})`);
  const live = (): string[] => (liveTasks.all(...LIVE) as { id: string }[]).map((t) => t.id);

  // data_version moves when another connection (the server's) commits a change: the exact "wrote nothing" for the
  // store, at the cost of one pragma; each table's last rowid (an index lookup, not a scan) names where rows were added
  const dataVersion = reader.prepare('PRAGMA data_version').pluck();
  const lastRows = tables.map((t) => [t, reader.prepare(`SELECT max(rowid) FROM "${t}"`).pluck()] as const);
  const snapshot = async (): Promise<Snapshot> => {
    const snap: Snapshot = new Map([['store data_version', String(dataVersion.get())]]);
    for (const [t, last] of lastRows) snap.set(`last row of ${t}`, String(last.get()));
    snap.set('files', (await listFiles(dir)).sort().join('\n'));
    return snap;
  };

  const tasksEnded = (deadlineMs: number): Promise<true> =>
    waitUntil(() => (live().length === 0 ? true : undefined), { deadlineMs, everyMs: 5, what: 'every task to end' });

  const settle = async (): Promise<void> => {
    // work that waits on users (a push at release, a claim's TTL) never ends by itself: after its patience it is cancelled
    await tasksEnded(options.patienceMs ?? 3_000).catch(async () => {
      for (const id of live()) await cancelTask(deps, id).catch(() => undefined);
      await tasksEnded(30_000);
    });
    await drainTasks(30_000);
    // a listing reconciles each VM record with its (absent) QEMU: done here, it is not a write of the next request
    await app.inject({ method: 'GET', url: '/v1/vms', headers: { authorization: `Bearer ${token}` } });
    await tasksEnded(30_000);
  };

  return {
    deps, app, token, checker, parts, snapshot, settle,
    close: async () => {
      parts.releaseAll();
      for (const id of live()) await cancelTask(deps, id).catch(() => undefined);
      await drainTasks(30_000);
      reader.close();
      await app.close();
      await db.destroy();
      await rm(dir, { recursive: true, force: true });
      await rm(webRoot, { recursive: true, force: true });
    },
  };
}
