import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KyselyPlugin } from 'kysely';
import { homeLayout } from '../../src/config/home.js';
import { machineBoot, readStartTime } from '../../src/host/index.js';
import { allocateLease } from '../../src/network/leases.js';
import type { Actor, OwnerOp, VmState } from '../../src/state/index.js';
import { LOCAL_HOST_ID, openStore, type Db } from '../../src/store/db.js';
import { insertVm } from '../../src/store/vms-repo.js';
import { createLogger } from '../../src/util/log.js';
import type { VmDeps } from '../../src/vm/index.js';
import { addNetworkRecord } from '../network/lease-fixtures.js';

/**
 * Another vmfork that is alive: a `sleep 60` whose pid + start time stand for the owner of the rows it "works on".
 * `stop()` kills that one process by its pid.
 */
export async function liveOtherOwner(op: OwnerOp): Promise<{ actor: Actor; stop: () => Promise<void> }> {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  const pid = child.pid as number;
  const startTime = await readStartTime(pid);
  assert.ok(startTime !== undefined, 'the live owner started');
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    actor: { owner: { pid, startTime, boot: await machineBoot() }, op },
    // idempotent, and never signals the pid once its process is gone (the number may belong to a stranger by then)
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL');
      await exited;
    },
  };
}

/** A real SQLite store in `root` (as the CLI's, a file in WAL mode) with one network record `n1`, no namespace. */
export async function recordsOnlyDeps(root: string): Promise<VmDeps & { dbPath: string }> {
  const dbPath = join(root, 'state.db');
  const db = await openStore(dbPath);
  await addNetworkRecord(db, 'n1', '10.9.0.0/24');
  return { db, home: homeLayout(root), log: createLogger(undefined), dbPath };
}

/** A VM record with an overlay file and an address on `n1`, in `state`, owned by `actor` if the state is transitional. */
export async function addVmRow(deps: VmDeps, name: string, state: VmState, actor: Actor, extra: { template_name?: string; spec_json?: string } = {}): Promise<string> {
  const dir = join(deps.home.vms, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'disk.qcow2'), 'overlay');
  await allocateLease(deps.db, { network: 'n1', vmName: name });
  const now = new Date().toISOString();
  await insertVm(deps.db, { name, host_id: LOCAL_HOST_ID, image_name: null, template_name: extra.template_name ?? 't', state, role: 'child', dir, spec_json: extra.spec_json ?? '{}', last_error: null, created_at: now, updated_at: now }, actor);
  return dir;
}

/**
 * `db` seen through a plugin that runs `between` once, right after the first query's result came back (before
 * the caller sees it): deterministic interleaving of "another process acted after this one read the row". The
 * other process must write through its own connection (this one is held while a plugin runs).
 */
export function afterFirstRead(db: Db, between: () => Promise<void>): Db {
  let fired = false;
  const plugin: KyselyPlugin = {
    transformQuery: ({ node }) => node,
    transformResult: async ({ result }) => {
      if (!fired) {
        fired = true;
        await between();
      }
      return result;
    },
  };
  return db.withPlugin(plugin);
}
