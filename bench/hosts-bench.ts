/**
 * `npm run bench -- hosts` (issue 14): a pool on one test host, then the same size spread over three, on the test
 * datacenter (real PostgreSQL, one namespace per host, real agents and QEMU). Every test host shares this machine's
 * cores, so each figure of the three-host run is read as a ratio against the one-host run of the same bench.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VmforkError } from '../src/errors.js';
import { percentile, run } from '../src/util/index.js';
import { cliJson, startDatacenter, type TestDatacenter, type TestHost } from '../test/fixtures/test-hosts.js';
import { TEST_HOOKS } from '../test/fixtures/ladder.js';
import type { HostsBenchOptions } from './hosts-args.js';
import { readLoadAvg, readMachineFacts, type LoadAvg, type MachineFacts } from './machine-facts.js';

export interface PoolRun {
  hosts: string[];
  wallMs: number;
  /** Phase 1 and the replica on the first host (the converge's replica step less the copies). */
  replicaMs: number;
  /** Copies to the other hosts, each host's seconds; they run at once. */
  copies: Record<string, number>;
  perHost: Record<string, { children: number; readyP50Ms: number | null }>;
  readyP50Ms: number | null;
  readyP95Ms: number | null;
  childrenMs: number;
}

export interface ApiLatency {
  server: string;
  p50Ms: number;
  p95Ms: number;
}

export interface HostsBenchResult {
  startedAt: string;
  options: HostsBenchOptions;
  machine: MachineFacts;
  load: { start: LoadAvg; end: LoadAvg };
  oneHost?: PoolRun;
  threeHosts?: PoolRun;
  apiOneServer?: ApiLatency[];
  apiTwoServers?: ApiLatency[];
  ratios?: { wall: number; replica: number; readyP50: number | null; apiP50: number | null };
  error?: string;
}

interface TaskView {
  state: string;
  result: { ms?: { replica: number; children: number }; copies?: Record<string, number>; readyMs?: Record<string, number> } | null;
}

const r1 = (n: number): number => Math.round(n * 10) / 10;
/** A percentile of samples known not to be empty, rounded. */
const pct = (samples: readonly number[], q: number): number => Math.round(percentile(samples, q) ?? 0);
const fail = (message: string): VmforkError => new VmforkError('VMFORK_FORK_FAILED', message);

async function poolRun(dc: TestDatacenter, h1: TestHost, root: string, name: string, datastore: string, hosts: string[], opts: HostsBenchOptions): Promise<PoolRun> {
  const file = join(root, `${name}.json`);
  writeFileSync(file, JSON.stringify({ name, image: 'default', datastore, size: { max: opts.children }, disks: { disposable: '64M', swap: '16M' }, memory: opts.memory, placement: { hosts, strategy: 'spread' } }));
  const t0 = performance.now();
  const accepted = await cliJson<{ taskId: string }>(dc, h1, ['pool', 'create', '-f', file]);
  const watched = await dc.cli(h1, ['task', 'watch', accepted.taskId], { timeoutMs: 60 * 60_000 });
  const wallMs = performance.now() - t0;
  if (watched.code !== 0) throw fail(`pool ${name}: ${watched.stderr}${watched.stdout}`);
  const task = await cliJson<TaskView>(dc, h1, ['task', 'show', accepted.taskId]);
  const pool = await cliJson<{ vms: { name: string; host: string }[] }>(dc, h1, ['pool', 'show', name]);
  const ready = task.result?.readyMs ?? {};
  const perHost: PoolRun['perHost'] = {};
  for (const h of hosts) {
    const mine = pool.vms.filter((v) => v.host === h).map((v) => ready[v.name]).filter((x): x is number => typeof x === 'number');
    perHost[h] = { children: pool.vms.filter((v) => v.host === h).length, readyP50Ms: mine.length ? pct(mine, 50) : null };
  }
  const all = Object.values(ready);
  const copies = task.result?.copies ?? {};
  const copyMs = Math.max(0, ...Object.values(copies).map((s) => s * 1000));
  return {
    hosts,
    wallMs: Math.round(wallMs),
    replicaMs: Math.round((task.result?.ms?.replica ?? 0) - copyMs),
    copies,
    perHost,
    readyP50Ms: all.length ? pct(all, 50) : null,
    readyP95Ms: all.length ? pct(all, 95) : null,
    childrenMs: task.result?.ms?.children ?? 0,
  };
}

/** `GET /v1/pools` N times, one at a time, from inside the server's host (its token read there). */
async function apiLatency(host: TestHost, calls: number): Promise<ApiLatency> {
  const script = `const t=require('fs').readFileSync(${JSON.stringify(join(host.home, 'api-token'))},'utf8').trim();(async()=>{const o=[];for(let i=0;i<${calls};i++){const a=performance.now();const r=await fetch('http://127.0.0.1:8470/v1/pools',{headers:{authorization:'Bearer '+t}});await r.text();if(!r.ok)throw new Error(String(r.status));o.push(performance.now()-a)}console.log(JSON.stringify(o))})().catch(e=>{console.error(e);process.exit(1)})`;
  const r = await run('nsenter', [`--net=/run/netns/${host.netns}`, '--', process.execPath, '-e', script], { timeoutMs: 10 * 60_000 });
  const samples = JSON.parse(r.stdout) as number[];
  return { server: host.name, p50Ms: r1(percentile(samples, 50) ?? 0), p95Ms: r1(percentile(samples, 95) ?? 0) };
}

export async function runHostsBench(opts: HostsBenchOptions, progress: (m: string) => void): Promise<HostsBenchResult> {
  const root = mkdtempSync(join(tmpdir(), 'vmfork-bench-hosts-'));
  const result: HostsBenchResult = { startedAt: new Date().toISOString(), options: opts, machine: await readMachineFacts(root), load: { start: await readLoadAvg(), end: await readLoadAvg() } };
  let dc: TestDatacenter | undefined;
  try {
    progress('test datacenter: PostgreSQL and three hosts');
    dc = await startDatacenter(root, ['h1', 'h2', 'h3']);
    const [h1, h2] = dc.hosts as [TestHost, TestHost, TestHost];
    const key = randomBytes(32).toString('hex');
    for (const h of dc.hosts) {
      writeFileSync(join(h.home, '..', 'fleet.key'), key, { mode: 0o600 });
      // h1 also has a datastore of its own for the one-host run, so its replica is made anew (not the other run's)
      const solo = join(h.home, '..', 'solo');
      mkdirSync(solo, { recursive: true });
      await dc.startAgent(h, ['--heartbeat-seconds', '1', '--lost-after-seconds', '30', '--fleet-key-file', join(h.home, '..', 'fleet.key'), ...(h.name === 'h1' ? ['--datastore', `solo=${solo}`] : [])]);
    }
    dc.startServer(h1);
    for (let i = 0; (await dc.cli(h1, ['pool', 'list', '--json'])).code !== 0; i++) {
      if (i > 240) throw fail('the server on h1 never answered');
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    progress('guest image');
    const built = await dc.cli(h1, ['image', 'build', '--name', 'default', '--hooks', TEST_HOOKS], { timeoutMs: 60 * 60_000 });
    if (built.code !== 0) throw fail(`image build: ${built.stderr}`);

    progress(`one host: a pool of ${opts.children} on h1`);
    result.oneHost = await poolRun(dc, h1, root, 'one', 'solo', ['h1'], opts);
    result.apiOneServer = [await apiLatency(h1, opts.apiCalls)];
    const rm = await dc.cli(h1, ['pool', 'rm', 'one', '--wait'], { timeoutMs: 30 * 60_000 });
    if (rm.code !== 0) throw fail(`pool rm one: ${rm.stderr}`);

    progress(`three hosts: a pool of ${opts.children} spread over h1, h2, h3`);
    dc.startServer(h2);
    result.threeHosts = await poolRun(dc, h1, root, 'three', 'main', ['h1', 'h2', 'h3'], opts);
    result.apiTwoServers = await Promise.all([apiLatency(h1, opts.apiCalls), apiLatency(h2, opts.apiCalls)]);
    const one = result.oneHost;
    const three = result.threeHosts;
    const apiOne = result.apiOneServer[0]?.p50Ms;
    const apiTwo = Math.max(...result.apiTwoServers.map((a) => a.p50Ms));
    result.ratios = {
      wall: r1(three.wallMs / one.wallMs),
      replica: r1((three.replicaMs + Math.max(0, ...Object.values(three.copies)) * 1000) / Math.max(1, one.replicaMs)),
      readyP50: one.readyP50Ms && three.readyP50Ms ? r1(three.readyP50Ms / one.readyP50Ms) : null,
      apiP50: apiOne ? r1(apiTwo / apiOne) : null,
    };
    const rm3 = await dc.cli(h1, ['pool', 'rm', 'three', '--wait'], { timeoutMs: 30 * 60_000 });
    if (rm3.code !== 0) throw fail(`pool rm three: ${rm3.stderr}`);
  } catch (err) {
    result.error = err instanceof Error ? err.message : String(err);
    progress(`failed: ${result.error}`);
  } finally {
    const left = dc ? await dc.close() : [];
    if (left.length) result.error = `${result.error ? `${result.error}; ` : ''}left behind: ${left.join(', ')}`;
    rmSync(root, { recursive: true, force: true });
    result.load.end = await readLoadAvg();
  }
  return result;
}
