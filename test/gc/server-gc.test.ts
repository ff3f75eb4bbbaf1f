import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { startServer } from '../../src/api/index.js';
import { openStore } from '../../src/store/db.js';
import { createLogger } from '../../src/util/log.js';
import { waitUntil } from '../../src/util/index.js';
import type { VmDeps } from '../../src/vm/index.js';
import { isRoot } from '../network/itest-helpers.js';
import { withTempDir } from '../helpers/temp-dir.js';
import { testHomeLayout } from '../helpers/store.js';

// the server's gc: a pass at start, one per interval after it (an interval of 100 ms here), each logged; POST /v1/gc
// answers the same report; close stops the timer
test('vmfork serve runs gc at start and on its interval, logs each pass, and serves POST /v1/gc', { skip: !isRoot() && 'needs root (network namespaces)' }, withTempDir('vmfork-gc-serve-', async (dir) => {
  const home = await testHomeLayout(dir);
  const db = await openStore(home.db);
  const deps: VmDeps = { db, home, log: createLogger(home.logs, 'info') };
  const first = join(home.vms, 'left-at-start');
  mkdirSync(first, { recursive: true });
  const server = await startServer(deps, { listen: '127.0.0.1:0', gcIntervalMs: 100 });
  try {
    await waitUntil(() => !existsSync(first), { deadlineMs: 30_000, everyMs: 20, what: 'the start pass to remove the orphan directory' });
    const later = join(home.vms, 'left-later');
    mkdirSync(later);
    // the pass logs once it is over: wait for its line, not for the directory
    const logged = (): string | false => {
      const log = readFileSync(join(home.logs, 'vmfork.log'), 'utf8');
      return log.includes(`"target":"${later}"`) && log;
    };
    const log = await waitUntil(logged, { deadlineMs: 30_000, everyMs: 20, what: 'a timed pass to remove the next one and log it' });
    assert.equal(existsSync(later), false);
    assert.match(log, /"msg":"gc: 1 done, 0 failed, 0 skipped"/);

    const token = readFileSync(server.tokenPath, 'utf8').trim();
    const res = await fetch(`${server.url}/v1/gc`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ dryRun: true }) });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { dryRun: true, actions: [] });
    const bad = await fetch(`${server.url}/v1/gc`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ dryRun: 'yes' }) });
    assert.equal(bad.status, 400);
  } finally {
    await server.close();
    await db.destroy();
  }
}));
