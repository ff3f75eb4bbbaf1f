import type { Command } from 'commander';
import { homeLayout, resolveHome, type HomeLayout } from '../config/home.js';
import { openStore, type Db } from '../store/db.js';
import { createLogger, type Logger } from '../util/log.js';

/** What every command needs: the data dir layout, a lazily opened store and the log. */
export interface CliContext {
  home: HomeLayout;
  log: Logger;
  db(): Promise<Db>;
  close(): Promise<void>;
}

export function createContext(program: Command): CliContext {
  const opts = program.opts<{ home?: string }>();
  const home = homeLayout(resolveHome({ home: opts.home }));
  const log = createLogger(home.logs);
  let db: Promise<Db> | undefined;
  return {
    home,
    log,
    db: () => (db ??= openStore(home.db)),
    close: async () => {
      if (db) await (await db).destroy();
    },
  };
}
