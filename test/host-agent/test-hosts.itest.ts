import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run, waitUntil } from '../../src/util/index.js';
import { isRoot } from '../network/itest-helpers.js';
import { startDatacenter, type TestDatacenter } from '../fixtures/test-hosts.js';
import { withTempDir } from '../helpers/temp-dir.js';

const skip = isRoot() ? false : 'needs root (network namespaces, PostgreSQL as its user)';

interface HostJson {
  id: string;
  state: string;
  agent: { generation: number; listen: string } | null;
}

async function hosts(dc: TestDatacenter): Promise<HostJson[]> {
  const r = await dc.cli(dc.hosts[0]!, ['host', 'list', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as HostJson[];
}

test('three test hosts, each in its own namespace on a datacenter bridge with its own data dir: their agents register over the network, a kill -9 is found lost, a restart is a new generation, and nothing is left', { skip },
  withTempDir('vmfork-dc-', async (root) => {
    const dc = await startDatacenter(root, ['h1', 'h2', 'h3']);
    let problems: string[] = [];
    try {
      const [h1, h2, h3] = dc.hosts as [typeof dc.hosts[0], typeof dc.hosts[0], typeof dc.hosts[0]];
      // the datacenter network: a host reaches another's address, and the store's
      const ping = await run('ip', ['netns', 'exec', h1.netns, 'ping', '-c', '1', '-W', '5', h3.address], { allowFailure: true });
      assert.equal(ping.code, 0, ping.stderr);
      const agents = [];
      for (const h of dc.hosts) agents.push(await dc.startAgent(h, ['--heartbeat-seconds', '0.5', '--lost-after-seconds', '3']));
      const seen = await hosts(dc);
      assert.deepEqual(seen.filter((h) => h.id !== 'local').map((h) => [h.id, h.state, h.agent?.listen]), [
        ['h1', 'up', `http://${h1.address}:8471`],
        ['h2', 'up', `http://${h2.address}:8471`],
        ['h3', 'up', `http://${h3.address}:8471`],
      ]);
      // an agent's status, fetched from another host over the datacenter network
      const status = await run('ip', ['netns', 'exec', h3.netns, process.execPath, '-e', `fetch('http://${h2.address}:8471/v1/agent').then((r) => r.text()).then((t) => process.stdout.write(t))`]);
      assert.equal((JSON.parse(status.stdout) as { host: string }).host, 'h2');

      agents[1]?.child.kill('SIGKILL');
      assert.equal(await agents[1]?.exited, null);
      await waitUntil(async () => ((await hosts(dc)).find((h) => h.id === 'h2')?.state === 'lost' ? true : undefined), { deadlineMs: 60_000, everyMs: 250, what: 'h2 found lost by h1 and h3' });
      await dc.startAgent(h2, ['--heartbeat-seconds', '0.5', '--lost-after-seconds', '3']);
      const back = (await hosts(dc)).find((h) => h.id === 'h2');
      assert.deepEqual([back?.state, back?.agent?.generation], ['up', 2]);
    } finally {
      problems = await dc.close();
    }
    assert.deepEqual(problems, [], 'the datacenter left nothing behind');
  }));
