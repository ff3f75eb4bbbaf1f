import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PROMETHEUS_BINARY, startPrometheus } from '../helpers/prometheus.js';
import { metricsFixture, P1_CHILDREN } from './fixture.js';

const exec = promisify(execFile);
const PROMTOOL = '/usr/bin/promtool';
const noPromtool = !existsSync(PROMTOOL) && `${PROMTOOL} is missing (Debian's prometheus package has it)`;

test(
  'a real Prometheus scrapes GET /metrics with the scrape token and answers the pool\'s children',
  { skip: !existsSync(PROMETHEUS_BINARY) && `${PROMETHEUS_BINARY} is missing (scripts/test.sh installs Debian's prometheus)`, timeout: 90_000 },
  async () => {
    const f = await metricsFixture();
    try {
      const url = await f.app.listen({ host: '127.0.0.1', port: 0 });
      const prometheus = await startPrometheus({ target: url, credentialsFile: f.scrapeTokenPath });
      try {
        await prometheus.waitForScrape();
        assert.equal(await prometheus.query('up{job="vmfork"}'), 1);
        const running = P1_CHILDREN.filter((c) => c.state === 'running').length;
        assert.equal(await prometheus.query('vmfork_pool_children{pool="p1",state="running"}'), running);
        assert.equal(await prometheus.query('vmfork_pool_ready_children{pool="p1"}'), 3);
        assert.equal(await prometheus.query('vmfork_pool_size{pool="p1",bound="max"}'), 8);

        // the store changes (another process could have made the child): the next scrape says so
        await f.addVm('p1-7', 'running');
        await prometheus.waitForScrape();
        assert.equal(await prometheus.query('vmfork_pool_children{pool="p1",state="running"}'), running + 1);
        assert.equal(await prometheus.query('sum(vmfork_pool_children{pool="p1"})'), P1_CHILDREN.length + 1);
        assert.equal(await prometheus.waitForValue('vmfork_pool_spare_children{pool="p1"}', (v) => v === 2), 2);
        assert.equal(await prometheus.query('vmfork_pool_children{pool="nope"}'), null);
      } finally {
        await prometheus.stop();
      }
      assert.throws(() => process.kill(prometheus.pid, 0), { code: 'ESRCH' }, 'prometheus is gone');
    } finally {
      await f.close();
    }
  },
);

test('a Prometheus holding a wrong token is refused (up == 0)', { skip: !existsSync(PROMETHEUS_BINARY) && `${PROMETHEUS_BINARY} is missing`, timeout: 90_000 }, async () => {
  const f = await metricsFixture();
  try {
    const url = await f.app.listen({ host: '127.0.0.1', port: 0 });
    const prometheus = await startPrometheus({ target: url, token: 'not-the-scrape-token' });
    try {
      assert.equal(await prometheus.waitForValue('up{job="vmfork"}', (v) => v === 0), 0);
    } finally {
      await prometheus.stop();
    }
  } finally {
    await f.close();
  }
});

test('promtool check metrics: the exposition parses, and no vmfork_ metric breaks a naming rule', { skip: noPromtool }, async () => {
  const f = await metricsFixture();
  try {
    await f.addTask('t-1', 'pool-create', 'succeeded', 5, { readyMs: { 'p1-1': 1500 } });
    const body = (await f.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${f.scrapeToken}` } })).body;
    const dir = mkdtempSync(join(tmpdir(), 'vmfork-promtool-'));
    try {
      writeFileSync(join(dir, 'metrics.txt'), body);
      // exit 3: lint problems (prom-client's own nodejs_*_total gauges have some); a parse error is another exit
      const r = await exec('sh', ['-c', `${PROMTOOL} check metrics < metrics.txt`], { cwd: dir }).then(
        (x) => ({ code: 0, out: x.stdout + x.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
      );
      assert.ok(r.code === 0 || r.code === 3, `promtool: exit ${r.code}\n${r.out}`);
      assert.doesNotMatch(r.out, /error/i);
      assert.deepEqual(r.out.split('\n').filter((l) => l.startsWith('vmfork_')), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    await f.close();
  }
});

/** The alert rules docs/metrics.md gives, as written there. */
function documentedRules(): string {
  const doc = readFileSync(new URL('../../../docs/metrics.md', import.meta.url), 'utf8');
  const m = /^## Alert rules\n[\s\S]*?^```yaml\n([\s\S]*?)^```/m.exec(doc);
  assert.ok(m?.[1], 'docs/metrics.md has a yaml block under "## Alert rules"');
  return m[1];
}

test("docs/metrics.md's alert rules: promtool checks them, and each fires on its case (promtool test rules)", { skip: noPromtool }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmfork-rules-'));
  try {
    writeFileSync(join(dir, 'rules.yml'), documentedRules());
    await exec(PROMTOOL, ['check', 'rules', 'rules.yml'], { cwd: dir });
    const series = (s: string, values: string) => ({ series: s, values });
    const alert = (name: string, at: string, labels: Record<string, string>, summary?: string) => ({
      eval_time: at,
      alertname: name,
      exp_alerts: summary === undefined ? [] : [{ exp_labels: { severity: name === 'VmforkPoolExhausted' ? 'critical' : 'warning', ...labels }, exp_annotations: { summary } }],
    });
    // p1 provisions for 6 minutes, then stays ready with no spare (it keeps 2) and nothing to claim; a converge
    // fails at minute 11; p2 failed; datastore `default` is 5 % free, `big` loses 1 GB a minute of its 100 GB
    const tests = {
      rule_files: ['rules.yml'],
      evaluation_interval: '1m',
      tests: [
        {
          interval: '1m',
          input_series: [
            series('vmfork_pool_spare_children{pool="p1"}', '0x60'),
            series('vmfork_pool_size{pool="p1",bound="spares"}', '2x60'),
            series('vmfork_pool_state{pool="p1",state="provisioning"}', '1x5 0x55'),
            series('vmfork_pool_state{pool="p1",state="ready"}', '0x5 1x55'),
            series('vmfork_pool_state{pool="p2",state="failed"}', '1x60'),
            series('vmfork_pool_ready_children{pool="p1"}', '0x60'),
            series('vmfork_task_duration_seconds_count{kind="pool-converge",state="failed"}', '0x10 1x50'),
            series('vmfork_datastore_bytes{host="local",datastore="default",kind="free"}', '5x60'),
            series('vmfork_datastore_bytes{host="local",datastore="default",kind="size"}', '100x60'),
            series('vmfork_datastore_bytes{host="h2",datastore="big",kind="free"}', '100e9-1e9x60'),
          ],
          alert_rule_test: [
            alert('VmforkPoolBelowMinReady', '4m', {}),
            alert('VmforkPoolBelowMinReady', '20m', { pool: 'p1' }, 'pool p1: 0 ready spares, fewer than its spec keeps'),
            alert('VmforkPoolExhausted', '4m', {}),
            alert('VmforkPoolExhausted', '20m', { pool: 'p1' }, 'pool p1: a claim finds no child (409 VMFORK_POOL_EXHAUSTED)'),
            alert('VmforkPoolFailed', '1m', { pool: 'p2', state: 'failed' }, 'pool p2: its last task stopped at an error (vmfork pool show p2)'),
            alert('VmforkTaskFailing', '5m', {}),
            alert('VmforkTaskFailing', '12m', { kind: 'pool-converge' }, '1 pool-converge task(s) failed in 15 minutes (see: vmfork task list)'),
            alert('VmforkDatastoreFilling', '20m', { host: 'local', datastore: 'default' }, 'datastore default on local: under 10 % free'),
            alert('VmforkDatastoreFullSoon', '50m', { host: 'h2', datastore: 'big', kind: 'free' }, 'datastore big on h2 fills up within a day'),
          ],
        },
      ],
    };
    writeFileSync(join(dir, 'rules-test.yml'), JSON.stringify(tests, null, 2));
    const r = await exec(PROMTOOL, ['test', 'rules', 'rules-test.yml'], { cwd: dir }).catch((e: { stdout: string; stderr: string }) => assert.fail(`promtool test rules:\n${e.stdout}${e.stderr}`));
    assert.match(r.stdout, /SUCCESS/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
