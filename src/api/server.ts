import { VmforkError } from '../errors.js';
import { parseListen as parseListenAddress } from '../util/index.js';
import { startGcTimer } from '../gc/index.js';
import { holdServerLock, listenForTaskEvents, recoverTasks, type RecoveredTask } from '../task/index.js';
import { registerLocalHost, startLostHostSweep } from '../host/index.js';
import { ensureMetricsToken } from '../metrics/index.js';
import { listVmsReconciled, type VmDeps } from '../vm/index.js';
import { buildApp } from './app.js';
import { ensureApiToken } from './auth.js';
import { acquireServerLock, type ServerLock } from './server-lock.js';
import type { ProvisionService } from './provision-service.js';

export const DEFAULT_LISTEN = '127.0.0.1:8470';

/** `HOST:PORT` (`[::1]:8470` for IPv6); port 0 picks a free one. */
export function parseListen(listen: string): { host: string; port: number } {
  return parseListenAddress(listen, DEFAULT_LISTEN);
}

export interface StartServerOptions {
  /** @default 127.0.0.1:8470 */
  listen?: string;
  provision?: ProvisionService | undefined;
  /** How often gc runs (docs/gc.md); the first pass runs at start, once the tasks a dead server left are resumed. @default 1 hour */
  gcIntervalMs?: number;
}

export const GC_INTERVAL_MS = 60 * 60_000;

export interface RunningServer {
  url: string;
  tokenPath: string;
  /** `<home>/metrics-token`: the scrape token a Prometheus reads GET /metrics with (docs/metrics.md). */
  metricsTokenPath: string;
  /** VMs found running (re-adopted) and tasks a dead server left, as this start found them. */
  adopted: number;
  recovered: RecoveredTask[];
  /** Stops listening. QEMU processes stay up (the next start re-adopts them); tasks still running go on in this process. */
  close(): Promise<void>;
}

/**
 * Starts the API on an open, healed store: registers this host and its datastores, makes the token file if missing,
 * reconciles VMs with their QEMU processes (a restart re-adopts them), resumes the tasks a dead server left (only
 * with a provisioning engine: its runners are the ones that can finish them), then listens.
 */
export async function startServer(deps: VmDeps, options: StartServerOptions = {}): Promise<RunningServer> {
  const { host, port } = parseListen(options.listen ?? DEFAULT_LISTEN);
  // first: a second server must be refused before it registers, reconciles or resumes anything
  const lock = await acquireServerLock(deps.home.root);
  try {
    return await startLocked(deps, options, host, port, lock);
  } catch (err) {
    await lock.release();
    throw err;
  }
}

/** How often a server on a shared store looks for tasks whose server died. */
const TASK_RECOVERY_MS = 5_000;

async function startLocked(deps: VmDeps, options: StartServerOptions, host: string, port: number, lock: ServerLock): Promise<RunningServer> {
  await registerLocalHost(deps);
  const { token, path: tokenPath } = await ensureApiToken(deps.home);
  const { token: metricsToken, path: metricsTokenPath } = await ensureMetricsToken(deps.home);
  const vms = await listVmsReconciled(deps);
  // held before anything is run: other servers on the store judge this one's tasks by it (task/owner-lock.ts)
  const serverLock = await holdServerLock(deps.db, deps.log);
  const recovered = options.provision ? await recoverTasks(deps, options.provision.runners) : [];
  const app = buildApp({ deps, provision: options.provision, token, metricsToken });
  try {
    await app.listen({ host, port });
  } catch (err) {
    await app.close();
    await serverLock?.stop();
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', `cannot listen on ${host}:${port}: ${(err as Error).message}`, { cause: err, details: { host, port } });
  }
  const address = app.server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${bound}`;
  lock.setUrl(url);
  deps.log.info({ url, tokenPath, recovered: recovered.length }, 'api server listening');
  // after recovery: the resumed tasks' records are owned by this live process, so gc leaves them alone
  const gc = startGcTimer(deps, options.gcIntervalMs ?? GC_INTERVAL_MS);
  // the claim clock: TTLs end and releases a crash cut off are queued again (only a server runs tasks)
  const sweeper = options.provision?.startClaimSweeper?.();
  // on a shared PostgreSQL store, events of tasks other servers run reach this one's followers at once
  const listener = listenForTaskEvents(deps.db);
  // placed pools rebuild what a lost host held on the other hosts: checked after each sweep (one converge queued)
  // several servers on one PostgreSQL store: the tasks of one that died are resumed by another, not only at a start
  const provision = options.provision;
  const taskSweep = serverLock && provision ? setInterval(() => void recoverTasks(deps, provision.runners).catch((err: unknown) => deps.log.warn({ err }, 'task recovery failed')), TASK_RECOVERY_MS) : undefined;
  taskSweep?.unref();
  const hostSweep = startLostHostSweep(deps.db, deps.log, undefined, () => options.provision?.rebuildLostCapacity?.() ?? Promise.resolve());
  return {
    url,
    tokenPath,
    metricsTokenPath,
    adopted: vms.filter((v) => v.state === 'running' || v.state === 'paused').length,
    recovered,
    close: async () => {
      await listener?.close();
      hostSweep?.stop();
      if (taskSweep) clearInterval(taskSweep);
      sweeper?.stop();
      await gc.stop();
      await app.close();
      await serverLock?.stop();
      await lock.release();
    },
  };
}
