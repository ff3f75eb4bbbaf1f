import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { homeLayout } from '../../src/config/home.js';
import { verifyChildren } from '../../src/verify/collect.js';
import { buildReport, summaryLines, tableRows } from '../../src/verify/report.js';
import { LOCAL_HOST_ID } from '../../src/store/db.js';
import { upsertReadyImage } from '../../src/store/images-repo.js';
import { insertTemplate } from '../../src/store/templates-repo.js';
import { insertVm } from '../../src/store/vms-repo.js';
import { createLogger } from '../../src/util/log.js';
import { childFacts } from './facts.js';
import { testActor } from '../helpers/actor.js';
import { openTestStore } from '../helpers/store.js';

test('a clean report is ok, with table rows and the all-clear', () => {
  const c1 = childFacts(1, { sshHostKeys: [{ type: 'ECDSA', fingerprint: 'SHA256:ec1', bits: 256 }, { type: 'ED25519', fingerprint: 'SHA256:abcdefghijk', bits: 256 }] });
  const r = buildReport({ template: 't', children: [c1, childFacts(2)], skipped: [], wallMs: 1234 });
  assert.equal(r.ok, true);
  assert.deepEqual(tableRows(r)[0], {
    name: 'c-1',
    ip: '10.231.0.3',
    mac: '52:54:00:00:00:01',
    'machine-id': '00000000',
    'ssh-key': 'ed25519 abcdefgh',
    clock: '+3.5 ±12.0 ms',
    'boot_id=template': 'yes',
    ping: '0.80 ms',
  });
  assert.deepEqual(summaryLines(r), ['no collisions among 2 children', 'no problems', 'verified 2 in 1.23 s']);
});

test('collisions and problems make the report fail and are listed under the table', () => {
  const r = buildReport({
    template: null,
    children: [childFacts(1), childFacts(2, { machineId: childFacts(1).machineId, qemuMac: '52:54:00:00:00:09', bootIdMatchesTemplate: false, reboots: null, bootId: 'new' })],
    skipped: [{ name: 'c-3', state: 'stopped' }],
    wallMs: 10,
  });
  assert.equal(r.ok, false);
  assert.deepEqual(r.collisions, [{ field: 'machineId', value: childFacts(1).machineId, children: ['c-1', 'c-2'] }]);
  assert.deepEqual(r.problems.map((p) => p.kind), ['mac-mismatch', 'rebooted']);
  const lines = summaryLines(r);
  assert.equal(lines[0], 'skipped c-3: stopped (only running VMs are verified)');
  assert.equal(lines[1], `COLLISION machineId ${childFacts(1).machineId ?? ''}: c-1, c-2`);
  assert.match(lines[2] ?? '', /^PROBLEM c-2 mac-mismatch:/);
  assert.equal(tableRows(r)[1]?.mac, '52:54:00:00:00:02 (qemu 52:54:00:00:00:09)');
  assert.equal(tableRows(r)[1]?.['boot_id=template'], 'NO');
});

test('limits reach the problem check', () => {
  const r = buildReport({ template: 't', children: [childFacts(1, { clockOffsetMs: 600 })], skipped: [], wallMs: 1, limits: { maxClockOffsetMs: 500 } });
  assert.deepEqual(r.problems.map((p) => p.kind), ['clock-offset']);
});

async function store(): Promise<{ deps: Parameters<typeof verifyChildren>[0]; close(): Promise<void> }> {
  const db = await openTestStore();
  const now = new Date().toISOString();
  await upsertReadyImage(db, { name: 'img', source: 'imported', disk_path: '/x.qcow2', kernel_path: null, initrd_path: null, manifest_path: null, recipe_hash: null, virtual_size: 1, file_size: 1, created_at: now });
  const actor = await testActor();
  await insertTemplate(db, { name: 't', image_name: 'img', state: 'ready', dir: '/nonexistent', spec_json: '{}', record_json: JSON.stringify({ bootId: 'b' }), last_error: null, created_at: now, updated_at: now }, actor);
  for (const [name, state] of [['t-1', 'stopped'], ['t-2', 'failed']] as const) {
    await insertVm(db, { name, host_id: LOCAL_HOST_ID, image_name: 'img', template_name: 't', state, role: 'child', dir: '/nonexistent', spec_json: '{}', last_error: null, created_at: now, updated_at: now }, actor);
  }
  return { deps: { db, home: homeLayout(tmpdir()), log: createLogger(undefined) }, close: () => db.destroy() };
}

test('selection: only running VMs are collected; the others are listed with their state', async () => {
  const s = await store();
  try {
    const r = await verifyChildren(s.deps, { template: 't' });
    assert.deepEqual(r.skipped, [{ name: 't-1', state: 'stopped' }, { name: 't-2', state: 'failed' }]);
    assert.deepEqual(r.children, []);
    assert.equal(r.ok, true);
    assert.deepEqual(summaryLines(r).slice(0, 3), ['skipped t-1: stopped (only running VMs are verified)', 'skipped t-2: failed (only running VMs are verified)', 'no running VM to verify']);
    const named = await verifyChildren(s.deps, { names: ['t-2', 't-2'] });
    assert.deepEqual(named.skipped, [{ name: 't-2', state: 'failed' }], 'a name given twice is checked once');
  } finally {
    await s.close();
  }
});

test('selection errors: both or neither of --template and names, unknown template or VM, bad concurrency', async () => {
  const s = await store();
  try {
    await assert.rejects(verifyChildren(s.deps, { template: 't', names: ['t-1'] }), { code: 'VMFORK_INVALID_ARGUMENT' });
    await assert.rejects(verifyChildren(s.deps, {}), { code: 'VMFORK_INVALID_ARGUMENT' });
    await assert.rejects(verifyChildren(s.deps, { template: 'nope' }), { code: 'VMFORK_TEMPLATE_NOT_FOUND' });
    await assert.rejects(verifyChildren(s.deps, { names: ['nope'] }), { code: 'VMFORK_VM_NOT_FOUND' });
    await assert.rejects(verifyChildren(s.deps, { template: 't', concurrency: 0 }), { code: 'VMFORK_INVALID_ARGUMENT' });
  } finally {
    await s.close();
  }
});
