import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { VmforkError } from '../errors.js';
import { isPostgresUrl } from '../util/index.js';

/** Every path vmfork writes lives under one data dir; this is its layout. */
export interface HomeLayout {
  root: string;
  /** The store: the SQLite file in the data dir, or the PostgreSQL URL given by `--db` / VMFORK_DB. */
  db: string;
  images: string;
  vms: string;
  templates: string;
  networks: string;
  logs: string;
  run: string;
}

export interface HomeOptions {
  /** `--home DIR`; wins over the environment. */
  home?: string | undefined;
  env?: NodeJS.ProcessEnv;
  uid?: number;
}

/**
 * Resolves the data dir: `--home`, then `VMFORK_HOME`, then `/var/lib/vmfork` for root or
 * `~/.local/share/vmfork` for anyone else.
 */
export function resolveHome(options: HomeOptions = {}): string {
  const env = options.env ?? process.env;
  if (options.home) return resolve(options.home);
  if (env.VMFORK_HOME) return resolve(env.VMFORK_HOME);
  const uid = options.uid ?? process.getuid?.() ?? 0;
  return uid === 0 ? '/var/lib/vmfork' : join(homedir(), '.local', 'share', 'vmfork');
}

/**
 * Built images may be shared between homes (tests use a fresh home each, CI builds once): `VMFORK_IMAGE_CACHE`
 * points every home at the same image directory.
 */
export function resolveImageDir(root: string, env: NodeJS.ProcessEnv = process.env): string {
  return env.VMFORK_IMAGE_CACHE ? resolve(env.VMFORK_IMAGE_CACHE) : join(root, 'images');
}

/**
 * The store: `--db URL`, then `VMFORK_DB`, then the data dir's SQLite file. Only PostgreSQL is named by URL
 * (docs/postgres.md); anything else given is refused before the store is touched. The data dir stays where the
 * files are (disks, RAM, sockets) whichever store holds the records.
 */
export function resolveStoreTarget(root: string, options: { db?: string | undefined; env?: NodeJS.ProcessEnv } = {}): string {
  const given = options.db ?? (options.env ?? process.env).VMFORK_DB;
  if (given === undefined || given === '') return join(root, 'vmfork.db');
  if (!isPostgresUrl(given)) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `--db (or VMFORK_DB) takes a postgres:// URL, e.g. postgres://vmfork@db.example:5432/vmfork; without it the store is ${join(root, 'vmfork.db')}`, {
      details: { field: 'db' },
    });
  }
  return given;
}

export function homeLayout(root: string, env: NodeJS.ProcessEnv = process.env, db?: string): HomeLayout {
  return {
    root,
    db: resolveStoreTarget(root, { db, env }),
    images: resolveImageDir(root, env),
    vms: join(root, 'vms'),
    templates: join(root, 'templates'),
    networks: join(root, 'networks'),
    logs: join(root, 'logs'),
    run: join(root, 'run'),
  };
}
