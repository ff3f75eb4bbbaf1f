import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { openStore } from '../../src/store/db.js';
import { transition } from '../../src/store/transition.js';
import { testActor } from '../helpers/actor.js';
import { allocateLease, freeCount, leasesFor, releaseLease } from '../../src/network/leases.js';
import { isLocallyAdministeredUnicast } from '../../src/network/mac.js';
import { addNetworkRecord } from './lease-fixtures.js';
import { openTestStore, testStoreTarget } from '../helpers/store.js';

test('leases: lowest free address, tap named after it, gateway and prefix, reuse after release', async () => {
  const db = await openTestStore();
  await addNetworkRecord(db, 'n1', '10.231.0.0/24');
  const a = await allocateLease(db, { network: 'n1', vmName: 'a' });
  assert.deepEqual([a.ip, a.prefix, a.gateway, a.tap, a.netns, a.bridge], ['10.231.0.2', 24, '10.231.0.1', 'vt2', 'vmfork-unit-n1', 'vmf-br']);
  assert.ok(isLocallyAdministeredUnicast(a.mac));
  const b = await allocateLease(db, { network: 'n1', vmName: 'b' });
  const c = await allocateLease(db, { network: 'n1', vmName: 'c' });
  assert.deepEqual([b.ip, b.tap, c.ip, c.tap], ['10.231.0.3', 'vt3', '10.231.0.4', 'vt4']);
  assert.deepEqual(await freeCount(db, 'n1'), { free: 250, used: 3, total: 253 });
  assert.equal((await releaseLease(db, 'n1', 'b'))?.ip, '10.231.0.3');
  assert.equal(await releaseLease(db, 'n1', 'b'), undefined, 'releasing twice is fine');
  assert.equal(await releaseLease(db, 'no-such-network', 'b'), undefined);
  assert.equal((await allocateLease(db, { network: 'n1', vmName: 'd' })).ip, '10.231.0.3', 'the hole is filled first');
  assert.deepEqual((await leasesFor(db, 'n1')).map((l) => l.vmName), ['a', 'c', 'd']);
  await db.destroy();
});

test('leases: a VM asking again gets the same lease; a different MAC for it is refused', async () => {
  const db = await openTestStore();
  await addNetworkRecord(db, 'n1', '10.231.0.0/24');
  const first = await allocateLease(db, { network: 'n1', vmName: 'a' });
  assert.deepEqual(await allocateLease(db, { network: 'n1', vmName: 'a' }), first);
  assert.deepEqual(await allocateLease(db, { network: 'n1', vmName: 'a', mac: first.mac.toUpperCase() }), first);
  await assert.rejects(allocateLease(db, { network: 'n1', vmName: 'a', mac: '02:00:00:00:00:99' }), { code: 'VMFORK_INVALID_ARGUMENT' });
  assert.equal((await freeCount(db, 'n1')).used, 1);
  await db.destroy();
});

test('leases: a /30 is exhausted after one VM, and the error says 0 of 1 left', async () => {
  const db = await openTestStore();
  await addNetworkRecord(db, 'tiny', '192.168.9.0/30');
  assert.equal((await allocateLease(db, { network: 'tiny', vmName: 'a' })).ip, '192.168.9.2');
  await assert.rejects(allocateLease(db, { network: 'tiny', vmName: 'b' }), (err: Error & { code?: string; details?: Record<string, unknown> }) => {
    assert.equal(err.code, 'VMFORK_NETWORK_EXHAUSTED');
    assert.match(err.message, /CIDR exhausted: .*0 of 1 addresses left/);
    assert.deepEqual(err.details, { network: 'tiny', cidr: '192.168.9.0/30', free: 0, total: 1 });
    return true;
  });
  assert.deepEqual(await freeCount(db, 'tiny'), { free: 0, used: 1, total: 1 });
  await db.destroy();
});

test('leases: MACs are unique across all networks; random collisions are retried', async () => {
  const db = await openTestStore();
  await addNetworkRecord(db, 'n1', '10.231.0.0/24');
  await addNetworkRecord(db, 'n2', '10.232.0.0/24');
  await allocateLease(db, { network: 'n1', vmName: 'a', mac: '0A:00:00:00:00:01' });
  await assert.rejects(allocateLease(db, { network: 'n2', vmName: 'b', mac: '0a:00:00:00:00:01' }), /already leased to VM "a" on "n1"/);
  await assert.rejects(allocateLease(db, { network: 'n2', vmName: 'b', mac: '01:00:00:00:00:01' }), { code: 'VMFORK_INVALID_ARGUMENT' });
  const macs = ['0a:00:00:00:00:01', '0a:00:00:00:00:01', '0a:00:00:00:00:02'];
  const l = await allocateLease(db, { network: 'n2', vmName: 'b', randomMac: () => macs.shift() ?? 'x' });
  assert.equal(l.mac, '0a:00:00:00:00:02');
  assert.equal(l.ip, '10.232.0.2', 'addresses are per network');
  await db.destroy();
});

test('leases: unknown or deleting network, bad VM name', async () => {
  const db = await openTestStore();
  await assert.rejects(allocateLease(db, { network: 'nope', vmName: 'a' }), { code: 'VMFORK_NETWORK_NOT_FOUND' });
  await addNetworkRecord(db, 'n1', '10.231.0.0/24');
  await assert.rejects(allocateLease(db, { network: 'n1', vmName: 'Bad_Name' }), { code: 'VMFORK_INVALID_NAME' });
  await transition(db, 'networks', 'n1', 'ready', 'deleting', await testActor('network-rm'));
  await assert.rejects(allocateLease(db, { network: 'n1', vmName: 'a' }), /being deleted/);
  await db.destroy();
});

const exec = promisify(execFile);
const worker = fileURLToPath(new URL('./alloc-worker.js', import.meta.url));

async function race(dbPath: string, network: string, processes: number, each: number): Promise<{ vm: string; ip?: string; mac?: string; tap?: string; error?: string }[]> {
  const outs = await Promise.all(
    Array.from({ length: processes }, (_, p) => exec(process.execPath, [worker, dbPath, network, `p${p}`, String(each)], { timeout: 60_000 })),
  );
  return outs.flatMap((o) => JSON.parse(o.stdout) as { vm: string; ip?: string }[]);
}

test('leases: concurrent processes sharing the store never get the same address, MAC or tap', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmfork-leases-'));
  try {
    // a file every worker opens on SQLite; one database they all connect to on PostgreSQL
    const path = await testStoreTarget(dir);
    const db = await openStore(path);
    await addNetworkRecord(db, 'big', '10.231.0.0/24');
    await addNetworkRecord(db, 'small', '10.231.1.0/27');
    await db.destroy();

    const big = await race(path, 'big', 4, 20);
    assert.deepEqual(big.filter((r) => r.error), []);
    const ips = big.map((r) => r.ip ?? '');
    assert.equal(new Set(ips).size, 80);
    assert.equal(new Set(big.map((r) => r.mac)).size, 80);
    assert.equal(new Set(big.map((r) => r.tap)).size, 80);
    const expected = Array.from({ length: 80 }, (_, i) => `10.231.0.${i + 2}`);
    assert.deepEqual([...ips].sort(), [...expected].sort(), 'exactly the 80 lowest addresses');

    const small = await race(path, 'small', 4, 10);
    assert.equal(small.filter((r) => r.ip).length, 29, 'a /27 has 29 VM addresses');
    assert.deepEqual([...new Set(small.filter((r) => r.error).map((r) => r.error))], ['VMFORK_NETWORK_EXHAUSTED']);
    assert.equal(new Set(small.map((r) => r.ip).filter(Boolean)).size, 29);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
