import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** Every path vmfork writes lives under one data dir; this is its layout. */
export interface HomeLayout {
  root: string;
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

export function homeLayout(root: string, env: NodeJS.ProcessEnv = process.env): HomeLayout {
  return {
    root,
    db: join(root, 'vmfork.db'),
    images: resolveImageDir(root, env),
    vms: join(root, 'vms'),
    templates: join(root, 'templates'),
    networks: join(root, 'networks'),
    logs: join(root, 'logs'),
    run: join(root, 'run'),
  };
}
