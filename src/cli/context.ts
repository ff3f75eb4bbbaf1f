import type { Command } from 'commander';
import { applyProcessUmask, ensurePrivateDir, homeLayout, resolveHome, type HomeLayout } from '../config/index.js';
import { healedLine, healInterrupted } from '../heal/index.js';
import { openStore, type Db } from '../store/index.js';
import { createLogger, type Logger } from '../util/index.js';
import type { VmDeps } from '../vm/index.js';

/** What every command needs: the data dir layout, a lazily opened store and the log. */
export interface CliContext {
  home: HomeLayout;
  log: Logger;
  /** The store, once any work left half-done by a killed vmfork process has been healed. */
  db(): Promise<Db>;
  /** The store, data dir and log together, as every VM, template and fork operation takes them. */
  deps(): Promise<VmDeps>;
  close(): Promise<void>;
}

/**
 * The composition root of every command. The first time a command needs the store, records left in a
 * transitional state by a vmfork process that died are finished or rolled back (src/heal/), and each one is said
 * on stderr — before the command acts on anything.
 *
 * Every command, `serve` included, comes through here first: so here the process takes the private umask and the
 * data dir is made (or tightened to) 0700 before anything is written in it (docs/data-dir.md).
 */
export function createContext(program: Command): CliContext {
  const opts = program.opts<{ home?: string; db?: string }>();
  const home = homeLayout(resolveHome({ home: opts.home }), process.env, opts.db);
  applyProcessUmask();
  const root = ensurePrivateDir(home.root);
  const log = createLogger(home.logs);
  if (root.tightenedFrom !== undefined) {
    log.warn({ dir: home.root, was: root.tightenedFrom.toString(8), now: '700' }, 'data dir was open to group or other: tightened to 0700');
  }
  if (root.looseNotOurs !== undefined) {
    log.warn({ dir: home.root, mode: root.looseNotOurs.toString(8) }, 'data dir is open to group or other and not ours to tighten');
  }
  let ready: Promise<Db> | undefined;
  let opened: Db | undefined;
  const open = async (): Promise<Db> => {
    opened = await openStore(home.db);
    for (const h of await healInterrupted({ db: opened, home, log })) process.stderr.write(`vmfork: ${healedLine(h)}\n`);
    return opened;
  };
  const db = (): Promise<Db> => (ready ??= open());
  return {
    home,
    log,
    db,
    deps: async () => ({ db: await db(), home, log }),
    close: async () => {
      if (ready) await ready.catch(() => undefined);
      await opened?.destroy();
    },
  };
}
