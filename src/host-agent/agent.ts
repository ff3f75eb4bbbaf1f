import { createServer, type Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { hostname } from 'node:os';
import type { HomeLayout } from '../config/index.js';
import { VmforkError } from '../errors.js';
import { healedLine, healInterrupted } from '../heal/index.js';
import { freeSpace, readMachine, sweepLost } from '../host/index.js';
import { getHost, hostHeartbeat, isPostgresUrl, markHostDown, openStore, registerAgentHost, settingOnce, tryHostLock, type Db, type HostLock } from '../store/index.js';
import type { Logger } from '../util/index.js';
import { JobQueue } from '../jobs/index.js';
import { endStaleExports } from '../qemu/index.js';
import { syncHostInstances } from '../network/index.js';
import { reconcileUnknownVms } from '../vm/index.js';
import { checkDatastoreMarkers, claimDatastores } from './datastore-marker.js';
import { readFleetKey } from './fleet-key.js';
import { startJobWorker, type JobWorker } from './job-worker.js';
import { nbdDir } from './replica-steps.js';
import { Slots, type StepContext } from './step-context.js';
import { HOST_AGENT_PROTOCOL, type HostAgentOptions } from './options.js';

/** The setting that names the fleet's host-agent protocol: written by the first agent, checked by every later one. */
const PROTOCOL_SETTING = 'host_agent_protocol';

export interface HostAgentDeps {
  /** The store's URL: host agents share PostgreSQL (docs/hosts.md). */
  db: string;
  /** This host's data dir: its VMs' directories, sockets and logs. */
  home: HomeLayout;
  log: Logger;
  /** Where the agent tells its operator what it found at start (healed records, jobs to run again). */
  say?: (line: string) => void;
}

export interface RunningHostAgent {
  host: string;
  generation: number;
  url: string;
  /** Resolves when the agent has stopped: asked to (stop()), or fenced by a newer agent of its host (rejects). */
  done: Promise<void>;
  stop(): Promise<void>;
}

async function refuseOtherProtocol(db: Db): Promise<void> {
  const fleet = Number(await settingOnce(db, PROTOCOL_SETTING, () => String(HOST_AGENT_PROTOCOL)));
  if (fleet !== HOST_AGENT_PROTOCOL) {
    throw new VmforkError('VMFORK_HOST_PROTOCOL', `this host agent speaks protocol ${HOST_AGENT_PROTOCOL}; the fleet on this database speaks protocol ${fleet}: run a host agent of the fleet's version`, {
      details: { agentProtocol: HOST_AGENT_PROTOCOL, fleetProtocol: fleet },
    });
  }
}

async function refuseTaken(db: Db, host: string): Promise<never> {
  const row = await getHost(db, host);
  const who = row?.agent_pid ? `pid ${row.agent_pid} on ${row.hostname}, listening on ${row.agent_listen ?? '?'}` : 'another process';
  throw new VmforkError('VMFORK_HOST_TAKEN', `host "${host}" already has a running agent (${who}): stop it first, or give this one another --host`, {
    details: { host, pid: row?.agent_pid ?? null, hostname: row?.hostname ?? null, listen: row?.agent_listen ?? null },
  });
}

async function listen(server: Server, host: string, port: number): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new VmforkError('VMFORK_INVALID_ARGUMENT', `cannot listen on ${host}:${port}: ${err.message}`, { cause: err, details: { host, port } })));
    server.listen(port, host, resolve);
  });
  const addr = server.address();
  const bound = addr && typeof addr === 'object' ? addr.port : port;
  return `http://${host.includes(':') ? `[${host}]` : host}:${bound}`;
}

/**
 * Starts a host agent (docs/hosts.md). In this order, so that a refusal leaves nothing behind: the store (PostgreSQL,
 * reachable, at a known schema), the fleet's protocol, the host's lock (one agent per name), the datastores'
 * markers (no directory of another host's) — then it acts: markers written, the host registered `up` with a new
 * generation and its facts, its address listened on, heartbeats sent. Every heartbeat also finds hosts whose
 * heartbeats stopped `lost`. A heartbeat that finds a newer generation means another agent of this host started:
 * this one is fenced, and stops.
 */
export async function startHostAgent(deps: HostAgentDeps, options: HostAgentOptions): Promise<RunningHostAgent> {
  if (!isPostgresUrl(deps.db)) {
    throw new VmforkError('VMFORK_INVALID_ARGUMENT', 'host agents share a PostgreSQL store: give --db postgres://… or VMFORK_DB (docs/hosts.md)', { details: { field: 'db' } });
  }
  const db = await openStore(deps.db);
  let lock: HostLock | undefined;
  let server: Server | undefined;
  let queue: JobQueue | undefined;
  try {
    await refuseOtherProtocol(db);
    lock = await tryHostLock(db, options.host);
    if (!lock) await refuseTaken(db, options.host);
    await checkDatastoreMarkers(options.host, options.datastores);
    const fleetKey = options.fleetKeyFile ? await readFleetKey(options.fleetKeyFile) : undefined;
    const machine = await readMachine(options.cpuAllocationRatio);
    // answers from the first request on: 503 until the host is registered, then its status
    let generation = 0;
    server = createServer((req, res) => {
      if (req.url !== '/v1/agent') return void res.writeHead(404, { 'content-type': 'application/json' }).end('{}');
      const body = JSON.stringify({ host: options.host, protocol: HOST_AGENT_PROTOCOL, generation, pid: process.pid });
      res.writeHead(generation ? 200 : 503, { 'content-type': 'application/json' }).end(body);
    });
    const url = await listen(server, options.listen.host, options.listen.port);
    await claimDatastores(options.host, options.datastores);
    const free = async (): Promise<Record<string, number>> =>
      Object.fromEntries(await Promise.all(options.datastores.map(async (d) => [d.name, (await freeSpace(d.path)).freeBytes] as const)));
    const freeNow = await free();
    generation = await registerAgentHost(db, {
      id: options.host,
      hostname: hostname(),
      protocol: HOST_AGENT_PROTOCOL,
      pid: process.pid,
      listen: url,
      ...machine,
      lostAfterMs: options.lostAfterMs,
      datastores: options.datastores.map((d) => ({ ...d, freeBytes: freeNow[d.name] ?? 0 })),
    });
    deps.log.info({ host: options.host, generation, url }, 'host agent up');
    queue = await JobQueue.open(deps.db, deps.log, { supervise: true });
    const ctx: StepContext = {
      deps: { db, home: deps.home, log: deps.log, hostId: options.host },
      queue,
      listenHost: options.listen.host,
      fleetKey,
      copies: new Slots(options.maxCopies),
      exports: new Map(),
      serves: new Map(),
    };
    const worker = await takeJobs(ctx, deps.say, generation);
    return running(ctx.deps, options, { lock: lock as HostLock, server, url, generation, free, queue, worker });
  } catch (err) {
    await queue?.stop();
    server?.close();
    await lock?.release();
    await db.destroy().catch(() => undefined);
    throw err;
  }
}

/**
 * Before this host's queue is worked: what a predecessor left half-done is healed (its VMs half-booted, half-stopped),
 * then the jobs it had taken are failed, so pg-boss's retry policy runs them again on a clean host. Both are safe
 * here: the host's lock is held, so no other agent of this host runs.
 */
async function takeJobs(ctx: StepContext, say: HostAgentDeps['say'], generation: number): Promise<JobWorker> {
  const { deps, queue } = ctx;
  const host = deps.hostId;
  await queue.ensureHostQueue(host);
  for (const h of await healInterrupted(deps)) {
    deps.log.warn({ host, healed: h }, 'healed at agent start');
    say?.(healedLine(h));
  }
  for (const r of await reconcileUnknown(deps, deps.log)) say?.(`VM ${r.name} was unknown while the host was lost: ${r.state}`);
  const ended = await endStaleExports(nbdDir(ctx));
  if (ended) say?.(`${ended} replica export${ended === 1 ? '' : 's'} left by a predecessor that died: ended`);
  const left = await queue.failLeftActive(host, `the agent of ${host} that took it died (generation ${generation - 1} or earlier); run again`);
  if (left.length) {
    deps.log.warn({ host, jobs: left }, 'jobs taken by a predecessor that died: failed, to be run again');
    say?.(`${left.length} job${left.length === 1 ? '' : 's'} taken by a predecessor that died: failed, to be run again (${left.join(', ')})`);
  }
  return startJobWorker(ctx);
}

async function reconcileUnknown(deps: StepContext['deps'], log: Logger): Promise<{ name: string; state: string }[]> {
  const moved = await reconcileUnknownVms(deps);
  for (const r of moved) log.warn({ host: deps.hostId, vm: r.name, state: r.state }, 'VM unknown while the host was lost: looked at again');
  return moved;
}

function running(
  vmDeps: StepContext['deps'],
  options: HostAgentOptions,
  held: { lock: HostLock; server: Server; url: string; generation: number; free: () => Promise<Record<string, number>>; queue: JobQueue; worker: JobWorker },
): RunningHostAgent {
  const { db, log } = vmDeps;
  const stopping = new AbortController();
  const beat = async (): Promise<'fenced' | undefined> => {
    if (!held.lock.held) {
      // the lock went with its connection (the database restarted): taken again, unless another agent of this host
      // took it meanwhile — then this one is the older, and stops
      const again = await tryHostLock(db, options.host);
      if (!again) return 'fenced';
      held.lock = again;
      log.warn({ host: options.host }, "host lock taken again: its connection was lost (the database restarted)");
    }
    if (!(await hostHeartbeat(db, options.host, held.generation, await held.free()))) return 'fenced';
    await sweepLost(db, log);
    const nets = await syncHostInstances(db, options.host).catch((err: unknown) => void log.warn({ err }, "this host's networks not synced"));
    if (nets?.peers.length || nets?.removed.length) log.info({ host: options.host, ...nets }, "this host's instances of the fleet's networks synced");
    // back from lost (a partition, a database away): its unknown VMs are looked at again
    await reconcileUnknown(vmDeps, log);
    return undefined;
  };
  const done = (async () => {
    let fenced = false;
    while (!stopping.signal.aborted && !fenced) {
      // timers/promises' sleep takes its abort listener back when it ends: one per heartbeat would pile up
      await sleep(options.heartbeatMs, undefined, { signal: stopping.signal }).catch(() => undefined);
      if (stopping.signal.aborted) break;
      // a database that is away for a moment (a restart) costs heartbeats, not the agent: the next one retries
      fenced = (await beat().catch((err: unknown) => void log.warn({ err }, 'heartbeat failed'))) === 'fenced';
    }
    await held.worker.stop();
    await held.queue.stop();
    if (!fenced) await markHostDown(db, options.host, held.generation).catch(() => false);
    held.server.close();
    await held.lock.release();
    await db.destroy().catch(() => undefined);
    if (fenced) {
      throw new VmforkError('VMFORK_HOST_TAKEN', `host "${options.host}" was taken over by a newer agent (this one had generation ${held.generation}): stopped`, {
        details: { host: options.host, generation: held.generation },
      });
    }
  })();
  return {
    host: options.host,
    generation: held.generation,
    url: held.url,
    done,
    stop: async () => {
      stopping.abort();
      await done.catch(() => undefined);
    },
  };
}
