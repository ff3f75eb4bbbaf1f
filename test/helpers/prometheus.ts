import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitUntil } from '../../src/util/index.js';

/**
 * A real Prometheus for tests, from Debian's `prometheus` package (scripts/test.sh installs it): run as the current
 * user with its own config, TSDB and log in a temp dir, listening on a free loopback port, scraping one vmfork server
 * every second as job `vmfork` with the scrape token as its bearer credentials (`credentials_file`, as a real
 * deployment would read `<home>/metrics-token`). Stopped by its pid, always: by `stop()`, and at this process's exit
 * should a test forget.
 */
export const PROMETHEUS_BINARY = '/usr/bin/prometheus';

export interface PrometheusOptions {
  /** The server to scrape: its URL (`http://127.0.0.1:8470`) or `HOST:PORT`. */
  target: string;
  /** The file holding the bearer token (`<home>/metrics-token`); or `token`, written to a 0600 file of its own. */
  credentialsFile?: string;
  token?: string;
  /** @default vmfork */
  job?: string;
}

export interface RunningPrometheus {
  /** Its own URL (the web UI and /api/v1). */
  url: string;
  pid: number;
  /** An instant query's one value; null when it matches no series. A query matching several is an error (sum() it). */
  query(promql: string): Promise<number | null>;
  /** Resolves after a scrape of the target that started after this call succeeded (`up == 1`): its values are fresh. */
  waitForScrape(options?: { timeoutMs?: number }): Promise<void>;
  /** Polls `query(promql)` until `ok` accepts its value, and returns that value. */
  waitForValue(promql: string, ok: (value: number | null) => boolean, options?: { timeoutMs?: number }): Promise<number | null>;
  stop(): Promise<void>;
}

interface QueryAnswer {
  status: 'success' | 'error';
  error?: string;
  data?: { resultType: 'vector' | 'scalar' | 'matrix' | 'string'; result: unknown };
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

/** host:port of a target given as a URL or as host:port. */
function targetAddress(target: string): { address: string; scheme: string } {
  if (!/^[a-z]+:\/\//i.test(target)) return { address: target, scheme: 'http' };
  const u = new URL(target);
  return { address: u.host, scheme: u.protocol.replace(/:$/, '') };
}

export async function startPrometheus(options: PrometheusOptions): Promise<RunningPrometheus> {
  if (!existsSync(PROMETHEUS_BINARY)) throw new Error(`${PROMETHEUS_BINARY} is missing: apt-get install prometheus (scripts/test.sh does)`);
  const dir = mkdtempSync(join(tmpdir(), 'vmfork-prometheus-'));
  const job = options.job ?? 'vmfork';
  let credentials = options.credentialsFile;
  if (!credentials) {
    if (options.token === undefined) throw new Error('startPrometheus needs credentialsFile or token');
    credentials = join(dir, 'metrics-token');
    writeFileSync(credentials, `${options.token}\n`, { mode: 0o600 });
  }
  const { address, scheme } = targetAddress(options.target);
  // JSON is YAML: every value quoted, nothing for a path or token to break
  const config = {
    global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    scrape_configs: [{ job_name: job, scheme, metrics_path: '/metrics', authorization: { type: 'Bearer', credentials_file: credentials }, static_configs: [{ targets: [address] }] }],
  };
  writeFileSync(join(dir, 'prometheus.yml'), JSON.stringify(config, null, 2));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const log = openSync(join(dir, 'prometheus.log'), 'a');
  const child = spawn(PROMETHEUS_BINARY, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: ['ignore', log, log] });
  closeSync(log);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${PROMETHEUS_BINARY} did not start`);
  running.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const logTail = (): string => readFileSync(join(dir, 'prometheus.log'), 'utf8').split('\n').slice(-20).join('\n');

  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(pid, 'SIGTERM');
      const timer = setTimeout(() => process.kill(pid, 'SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    running.delete(child);
    rmSync(dir, { recursive: true, force: true });
  };

  const api = async (path: string): Promise<QueryAnswer> => {
    const r = await fetch(`${url}${path}`);
    return (await r.json()) as QueryAnswer;
  };
  const query = async (promql: string): Promise<number | null> => {
    const a = await api(`/api/v1/query?query=${encodeURIComponent(promql)}`);
    if (a.status !== 'success' || !a.data) throw new Error(`prometheus: ${promql}: ${a.error ?? 'no data'}`);
    if (a.data.resultType === 'scalar') return Number((a.data.result as [number, string])[1]);
    const series = a.data.result as { metric: Record<string, string>; value: [number, string] }[];
    if (series.length > 1) throw new Error(`prometheus: ${promql} matches ${series.length} series: ${series.map((s) => JSON.stringify(s.metric)).join(', ')}`);
    return series[0] ? Number(series[0].value[1]) : null;
  };

  try {
    await waitUntil(
      async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}:\n${logTail()}`);
        return (await fetch(`${url}/-/ready`).catch(() => undefined))?.ok === true;
      },
      { deadlineMs: 30_000, everyMs: 200, what: `prometheus on ${url} to be ready` },
    );
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    url,
    pid,
    query,
    waitForScrape: async ({ timeoutMs = 30_000 } = {}) => {
      const since = Date.now() / 1000;
      // timestamp(up) is when that scrape started: one that started after the call read what was there by then
      await waitUntil(async () => ((await query(`up{job="${job}"} == 1 and timestamp(up{job="${job}"}) > ${since}`)) ?? 0) === 1, {
        deadlineMs: timeoutMs,
        everyMs: 250,
        what: `a successful scrape of ${address} by prometheus (job ${job}; its log: ${join(dir, 'prometheus.log')})`,
      });
    },
    waitForValue: async (promql, ok, { timeoutMs = 30_000 } = {}) => {
      let last: number | null = null;
      await waitUntil(
        async () => {
          last = await query(promql);
          return ok(last);
        },
        { deadlineMs: timeoutMs, everyMs: 250, what: `prometheus to answer ${promql} as expected` },
      );
      return last;
    },
    stop,
  };
}
