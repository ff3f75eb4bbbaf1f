import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/util/index.js';
import { sweepLost } from '../../src/host/index.js';
import { hostHeartbeat, insertVm, openStore, registerAgentHost, requireVm, type Db } from '../../src/store/index.js';
import type { VmState } from '../../src/state/index.js';
import { reconcileUnknownVms } from '../../src/vm/index.js';
import { testActor } from '../helpers/actor.js';
import { testDialect, testHomeLayout } from '../helpers/store.js';
import { withTempDir } from '../helpers/temp-dir.js';

// agents' hosts are a PostgreSQL store's: run by scripts/test-pg.sh
const skip = testDialect() === 'postgres' ? false : "lost hosts are a shared PostgreSQL store's: run by scripts/test-pg.sh";
const log = createLogger(undefined);

async function vm(db: Db, name: string, host: string, state: VmState, role: 'vm' | 'warm' = 'vm'): Promise<void> {
  const now = new Date().toISOString();
  await insertVm(db, { name, host_id: host, image_name: null, template_name: null, state, role, dir: `/nonexistent/${name}`, spec_json: '{}', last_error: null, created_at: now, updated_at: now }, await testActor('boot'));
}

test("a lost host's running, paused and warm VMs become unknown (others and other hosts' untouched); its agent, back, finds their QEMU gone and stops them", { skip },
  withTempDir('vmfork-lost-', async (dir) => {
    const home = await testHomeLayout(dir);
    const db = await openStore(home.db);
    try {
      for (const id of ['a', 'b']) {
        await registerAgentHost(db, { id, hostname: 'test', protocol: 1, pid: process.pid, listen: 'http://127.0.0.1:1', cpus: 2, cpuAllocationRatio: 16, memoryBytes: 1 << 30, accel: 'tcg', accelWhy: 'test', qemuVersion: '7.2', lostAfterMs: 600, datastores: [] });
      }
      await vm(db, 'a-run', 'a', 'running');
      await vm(db, 'a-pause', 'a', 'paused');
      await vm(db, 'a-warm', 'a', 'warm', 'warm');
      await vm(db, 'a-off', 'a', 'stopped');
      await vm(db, 'b-run', 'b', 'running');
      // b keeps beating; a's last heartbeat ages past its rule (the database's clock decides)
      await new Promise((r) => setTimeout(r, 700));
      assert.equal(await hostHeartbeat(db, 'b', 1, {}), true);
      assert.deepEqual(await sweepLost(db, log), ['a']);
      const states = async (): Promise<string[]> => Promise.all(['a-run', 'a-pause', 'a-warm', 'a-off', 'b-run'].map(async (n) => (await requireVm(db, n)).state));
      assert.deepEqual(await states(), ['unknown', 'unknown', 'unknown', 'stopped', 'running']);
      assert.match((await requireVm(db, 'a-run')).last_error ?? '', /host a lost .* while the VM was running/);
      assert.deepEqual(await sweepLost(db, log), [], 'found lost once');

      // b's agent says nothing of a's VMs; a's agent, back, finds no QEMU for any of them
      assert.deepEqual(await reconcileUnknownVms({ db, home, log, hostId: 'b' }), []);
      const back = await reconcileUnknownVms({ db, home, log, hostId: 'a' });
      assert.deepEqual(back, [{ name: 'a-pause', state: 'stopped' }, { name: 'a-run', state: 'stopped' }, { name: 'a-warm', state: 'failed' }]);
      assert.deepEqual(await states(), ['stopped', 'stopped', 'failed', 'stopped', 'running']);
    } finally {
      await db.destroy();
    }
  }));
