/**
 * Two data dirs on one host: network namespaces are host-global, so each data dir must name its own. Both fork
 * children onto their own `default` network at the same time, with no VMFORK_NETNS_PREFIX anywhere.
 */
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execInNetns, listNamespaces } from '../../src/network/index.js';
import { createTestHome, ensureImage, ensureTemplate, releaseSharedRung, sharedRung, SHARED_RUNG_DEADLINE_MS, teardownHome, vmTest, VmTracker, type SharedRung, type TestHome } from '../fixtures/ladder.js';
import { useLeakCheck } from '../fixtures/leak-check.js';

let a: SharedRung;
let b: TestHome;
let trackerA: VmTracker;
let trackerB: VmTracker;

before(
  async () => {
    assert.equal(process.env.VMFORK_NETNS_PREFIX, undefined, 'this test is about the default: no prefix is set');
    a = await sharedRung();
    b = await createTestHome('home-b');
    trackerA = new VmTracker(a.th);
    trackerB = new VmTracker(b);
    await ensureImage(b);
    // the second home's template takes its default network too: before per-data-dir prefixes, VMFORK_NETWORK_EXISTS
    await ensureTemplate(b, 'tb', '256M');
  },
  { timeout: SHARED_RUNG_DEADLINE_MS },
);

// each test's children, in either home, are gone at its end (its trackers' teardown included), or it fails
useLeakCheck(() => a?.th, () => trackerA.teardown(), { warmIsShared: true });
useLeakCheck(() => b, () => trackerB.teardown());

after(async () => {
  await trackerA.teardown();
  await trackerB.teardown();
  assert.deepEqual(await teardownHome(b), [], 'the second home left nothing behind');
  assert.deepEqual(await releaseSharedRung(), [], 'the shared rung left nothing behind');
});

type ForkJson = { network: string; children: { name: string; ip: string; netns: string }[]; failed: unknown[] };

vmTest('two data dirs each fork 2 children on their own default network at the same time', () => trackerA, async () => {
  const [ra, rb] = await Promise.all([
    a.th.cli(['fork', a.template, '--count', '2', '--name', 'ha-{n}', '--json'], { allowFailure: true }),
    b.cli(['fork', 'tb', '--count', '2', '--name', 'hb-{n}', '--json'], { allowFailure: true }),
  ]);
  assert.equal(ra.code, 0, ra.stderr);
  assert.equal(rb.code, 0, rb.stderr);
  const [fa, fb] = [JSON.parse(ra.stdout) as ForkJson, JSON.parse(rb.stdout) as ForkJson];
  for (const c of fa.children) trackerA.track(c.name);
  for (const c of fb.children) trackerB.track(c.name);
  assert.deepEqual([fa.failed, fb.failed], [[], []]);
  assert.deepEqual([fa.network, fb.network], ['default', 'default']);
  assert.equal(fa.children.length + fb.children.length, 4);
  const [nsA, nsB] = [fa.children[0]?.netns ?? '', fb.children[0]?.netns ?? ''];
  assert.notEqual(nsA, nsB, 'each data dir has its own namespace for its default network');
  assert.ok(nsA.startsWith(await a.th.netnsPrefix()) && nsB.startsWith(await b.netnsPrefix()), `${nsA} / ${nsB}`);
  assert.ok((await listNamespaces()).includes(nsA) && (await listNamespaces()).includes(nsB));
  for (const c of [...fa.children, ...fb.children]) {
    const r = await execInNetns(c.netns, 'ping', ['-c1', '-W3', c.ip], { allowFailure: true });
    assert.equal(r.code, 0, `${c.name} answers in ${c.netns}: ${r.stdout}${r.stderr}`);
  }
  // with its children gone, a template may be removed
  for (const c of fb.children) await b.cli(['vm', 'destroy', c.name]);
  const rm = await b.cli(['template', 'rm', 'tb'], { allowFailure: true });
  assert.equal(rm.code, 0, `template rm is allowed once no child uses it: ${rm.stderr}`);
});
