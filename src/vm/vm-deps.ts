import type { HomeLayout } from '../config/home.js';
import type { Db } from '../store/db.js';
import type { Logger } from '../util/log.js';

/** What VM operations need from their caller (the CLI context, the API server, a test fixture). */
export interface VmDeps {
  db: Db;
  home: HomeLayout;
  log: Logger;
}
