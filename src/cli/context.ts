import type { Command } from 'commander';
import { homeLayout, resolveHome, type HomeLayout } from '../config/home.js';
import { openStore, type Db } from '../store/db.js';
import { createLogger, type Logger } from '../util/log.js';
import type { VmDeps } from '../vm/vm-deps.js';

/** What every command needs: the data dir layout, a lazily opened store and the log. */
export interface CliContext {
  home: HomeLayout;
  log: Logger;
  db(): Promise<Db>;
  /** The store, data dir and log together, as every VM, template and fork operation takes them. */
  deps(): Promise<VmDeps>;
  close(): Promise<void>;
}

export function createContext(program: Command): CliContext {
  const opts = program.opts<{ home?: string }>();
  const home = homeLayout(resolveHome({ home: opts.home }));
  const log = createLogger(home.logs);
  let db: Promise<Db> | undefined;
  const openDb = (): Promise<Db> => (db ??= openStore(home.db));
  return {
    home,
    log,
    db: openDb,
    deps: async () => ({ db: await openDb(), home, log }),
    close: async () => {
      if (db) await (await db).destroy();
    },
  };
}
