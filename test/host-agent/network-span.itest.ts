import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listNamespaces } from '../../src/network/ip.js';
import { run, waitUntil } from '../../src/util/index.js';
import { isRoot } from '../network/itest-helpers.js';
import { TEST_HOOKS } from '../fixtures/ladder.js';
import { startDatacenter, type TestDatacenter, type TestHost } from '../fixtures/test-hosts.js';
import { withTempDir } from '../helpers/temp-dir.js';

const skip = isRoot() ? false : 'needs root (network namespaces, PostgreSQL as its user, QEMU)';
const AGENT = ['--heartbeat-seconds', '0.5', '--lost-after-seconds', '5'];
const BOOT_MS = 10 * 60_000;

async function json(dc: TestDatacenter, host: TestHost, args: string[], timeoutMs = 60_000): Promise<Record<string, unknown>> {
  const r = await dc.cli(host, [...args, '--json'], { timeoutMs });
  assert.equal(r.code, 0, `vmfork ${args.join(' ')}: ${r.stderr} ${r.stdout}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

interface VxlanLink {
  ifname: string;
  master?: string;
  linkinfo?: { info_kind?: string; info_data?: { id?: number; local?: string } };
  stats64?: { tx?: { packets?: number }; rx?: { packets?: number } };
}

async function vxlanOf(netns: string): Promise<VxlanLink> {
  const r = await run('ip', ['-n', netns, '-d', '-s', '-j', 'link', 'show', 'dev', 'vmf-vx']);
  return (JSON.parse(r.stdout) as VxlanLink[])[0] as VxlanLink;
}

type Child = { name: string; ip: string; mac: string; identity: { machineId: string } };

test('one network across hosts: each host has its own instance of it, joined by VXLAN over the datacenter; a child on h1 pings a child on h2; addresses and MACs drawn once for the fleet; the instances go with the network', { skip },
  withTempDir('vmfork-span-', async (root) => {
    const dc = await startDatacenter(root, ['h1', 'h2']);
    let problems: string[] = [];
    try {
      const [h1, h2] = dc.hosts as [TestHost, TestHost];
      await dc.startAgent(h1, AGENT);
      await dc.startAgent(h2, AGENT);
      const built = await dc.cli(h1, ['image', 'build', '--name', 'default', '--hooks', TEST_HOOKS], { timeoutMs: 1_800_000 });
      assert.equal(built.code, 0, built.stderr);
      assert.equal((await dc.cli(h1, ['network', 'create', 'span', '--cidr', '10.77.0.0/24'])).code, 0);

      // a template on each host, made by its agent, each on its host's instance of the network
      const [t1, t2] = await Promise.all([
        json(dc, h1, ['template', 'create', 't1', '--image', 'default', '--network', 'span', '--host', 'h1'], BOOT_MS),
        json(dc, h2, ['template', 'create', 't2', '--image', 'default', '--network', 'span', '--host', 'h2'], BOOT_MS),
      ]);
      assert.deepEqual([t1.host, t2.host], ['h1', 'h2']);
      const listed = (await json(dc, h1, ['template', 'list'])) as unknown as { name: string; host: string }[];
      assert.deepEqual(listed.map((t) => `${t.name}@${t.host}`).sort(), ['t1@h1', 't2@h2']);

      // forked from h1's CLI both times: each fork goes to its template's host
      const f1 = (await json(dc, h1, ['fork', 't1', '--network', 'span'], BOOT_MS)) as unknown as { host: string; children: Child[] };
      const f2 = (await json(dc, h1, ['fork', 't2', '--network', 'span'], BOOT_MS)) as unknown as { host: string; children: Child[] };
      assert.deepEqual([f1.host, f2.host], ['h1', 'h2']);
      const [c1, c2] = [f1.children[0] as Child, f2.children[0] as Child];
      assert.notEqual(c1.ip, c2.ip);
      assert.notEqual(c1.mac, c2.mac);
      assert.notEqual(c1.identity.machineId, c2.identity.machineId);
      const shown = (await json(dc, h1, ['vm', 'show', c2.name])) as { host?: string };
      assert.equal(shown.host, 'h2');

      // each host's instance is its own namespace, with a VXLAN device sourced from its host's address and the
      // network's VNI; the only way between the two is that tunnel over the datacenter's bridge
      const [n1, n2] = [`${dc.prefix}span@h1`, `${dc.prefix}span@h2`];
      const names = await listNamespaces();
      assert.ok(names.includes(n1) && names.includes(n2), `instances ${n1} and ${n2} in ${names.join(', ')}`);
      const [v1, v2] = [await vxlanOf(n1), await vxlanOf(n2)];
      assert.equal(v1.linkinfo?.info_kind, 'vxlan');
      assert.equal(v1.linkinfo?.info_data?.local, h1.address);
      assert.equal(v2.linkinfo?.info_data?.local, h2.address);
      assert.equal(v1.linkinfo?.info_data?.id, v2.linkinfo?.info_data?.id);
      assert.equal(v1.master, 'vmf-br');
      const txBefore = v1.stats64?.tx?.packets ?? 0;

      // run in c1 (on h1, by h1's agent): c2's address, on h2, answers
      const ping = await dc.cli(h1, ['vm', 'exec', c1.name, '--', 'ping', '-c', '3', '-W', '10', c2.ip], { timeoutMs: 120_000 });
      assert.equal(ping.code, 0, `ping from ${c1.name} (h1) to ${c2.ip} (h2): ${ping.stdout}${ping.stderr}`);
      assert.match(ping.stdout, /3 received/);
      assert.ok(((await vxlanOf(n1)).stats64?.tx?.packets ?? 0) >= txBefore + 3, "the echo requests left through h1's VXLAN device");
      // and the other way, c2's own neighbour table names c1's MAC: one segment
      const back = await dc.cli(h1, ['vm', 'exec', c2.name, '--', 'ping', '-c', '1', '-W', '10', c1.ip], { timeoutMs: 120_000 });
      assert.equal(back.code, 0, back.stdout + back.stderr);

      // `vmfork verify` from h1: c2 is collected by h2's agent, and both compared: distinct machines across hosts
      const verified = await dc.cli(h1, ['verify', c1.name, c2.name, '--json'], { timeoutMs: 180_000 });
      const report = JSON.parse(verified.stdout) as { ok: boolean; children: { name: string; reachable: boolean | null; netns: string | null; ipv4: string | null }[]; problems: unknown[] };
      assert.equal(verified.code, 0, `verify: ${JSON.stringify(report.problems)} ${verified.stderr}`);
      assert.equal(report.ok, true);
      assert.deepEqual(report.children.map((c) => [c.name, c.reachable, c.netns, c.ipv4]), [[c1.name, true, n1, c1.ip], [c2.name, true, n2, c2.ip]].sort());
      for (const name of [c1.name, c2.name]) assert.equal((await dc.cli(h1, ['vm', 'destroy', name])).code, 0);
      for (const name of ['t1', 't2']) {
        const rm = await dc.cli(h1, ['template', 'rm', name]);
        assert.equal(rm.code, 0, rm.stderr);
      }
      const removed = await dc.cli(h1, ['network', 'rm', 'span']);
      assert.equal(removed.code, 0, removed.stderr);
      // each agent deletes its instance of a network the fleet no longer has, at a heartbeat
      await waitUntil(async () => ((await listNamespaces()).some((n) => n === n1 || n === n2) ? undefined : true), {
        deadlineMs: 60_000,
        everyMs: 200,
        what: "the agents to remove their hosts' instances of the removed network",
      });
    } finally {
      problems = await dc.close();
    }
    assert.deepEqual(problems, []);
  }),
);
