import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { buildApp, ensureApiToken } from '../../src/api/index.js';
import { createProvisionService } from '../../src/pool/index.js';
import { registerLocalHost } from '../../src/host/index.js';
import { insertImage, insertVm, LOCAL_HOST_ID, openStore } from '../../src/store/index.js';
import type { VmState } from '../../src/state/index.js';
import { createLogger } from '../../src/util/index.js';
import type { VmDeps } from '../../src/vm/index.js';
import { testActor } from '../helpers/actor.js';
import { checkedInject, OpenApiChecker } from './openapi-check.js';
import { ScriptedProvision } from './scripted-provision.js';
import { testHomeLayout } from '../helpers/store.js';

/** An API over a fresh data dir (a real store, records inserted through the repos), its token and its checker. */
export interface ApiFixture {
  dir: string;
  deps: VmDeps;
  token: string;
  tokenPath: string;
  app: FastifyInstance;
  checker: OpenApiChecker;
  /** The scripted stand-in when the fixture runs with it (calls recorded). */
  provision: ScriptedProvision | undefined;
  /** `inject` with the token, every answer validated against the OpenAPI document. */
  call(opts: InjectOptions & { method: string; url: string; token?: string | null }): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

/**
 * provision: the scripted stand-in (default), the real engine (no VM is made unless a test creates a pool), or none.
 * webRoot: the built console the pages serve (default: the package's, absent in a test build).
 */
export async function apiFixture(options: { provision?: boolean | 'engine'; webRoot?: string } = {}): Promise<ApiFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'vmfork-api-'));
  const home = await testHomeLayout(dir);
  const db = await openStore(home.db);
  const deps: VmDeps = { db, home, log: createLogger(undefined) };
  await registerLocalHost(deps);
  const { token, path: tokenPath } = await ensureApiToken(home);
  const provision = options.provision === false || options.provision === 'engine' ? undefined : new ScriptedProvision(deps);
  const app = buildApp({ deps, provision: options.provision === 'engine' ? createProvisionService(deps) : provision, token, ...(options.webRoot ? { webRoot: options.webRoot } : {}) });
  const checker = await OpenApiChecker.load(app, token);
  return {
    dir, deps, token, tokenPath, app, checker, provision,
    call: (opts) => checkedInject(app, checker, token, opts),
    close: async () => {
      await app.close();
      await db.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function addImage(deps: VmDeps, name: string): Promise<void> {
  const now = new Date().toISOString();
  await insertImage(deps.db, { name, source: 'imported', state: 'ready', disk_path: join(deps.home.images, name, 'disk.qcow2'), kernel_path: null, initrd_path: null, manifest_path: null, recipe_hash: null, virtual_size: 1 << 30, file_size: 1 << 20, created_at: now }, await testActor('image-import'));
}

/** A VM record at rest (no QEMU to reconcile with). */
export async function addVm(deps: VmDeps, name: string, state: VmState = 'stopped'): Promise<void> {
  const now = new Date().toISOString();
  await insertVm(deps.db, { name, host_id: LOCAL_HOST_ID, image_name: null, state, role: 'child', dir: join(deps.home.vms, name), spec_json: '{"memoryMiB":256,"cpus":1}', last_error: null, created_at: now, updated_at: now, template_name: null }, await testActor('fork'));
}
