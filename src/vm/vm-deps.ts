import type { HomeLayout } from '../config/index.js';
import type { Db } from '../store/index.js';
import type { Logger } from '../util/index.js';

/** What VM, template and fork operations need from their caller (the CLI context, the API server, a test fixture). */
export interface VmDeps {
  db: Db;
  home: HomeLayout;
  log: Logger;
}
