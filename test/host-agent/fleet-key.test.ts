import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isVmforkError } from '../../src/errors.js';
import { exportKey, readFleetKey } from '../../src/host-agent/fleet-key.js';
import { parseHostAgentOptions } from '../../src/host-agent/index.js';
import { Slots } from '../../src/host-agent/step-context.js';
import { withTempDir } from '../helpers/temp-dir.js';

const refused = (field: string) => (e: unknown): boolean => isVmforkError(e) && e.code === 'VMFORK_INVALID_ARGUMENT' && e.details?.field === field;

test('the fleet key is a private file of at least 32 bytes; each export key is derived from it and the export id, never sent', withTempDir('vmfork-key-', async (dir) => {
  const good = join(dir, 'fleet.key');
  writeFileSync(good, `${'ab'.repeat(32)}\n`, { mode: 0o600 });
  const key = await readFleetKey(good);
  assert.equal(key.length, 64);
  const a = exportKey(key, '5f0c6a4e-0000-4000-8000-000000000001');
  assert.match(a, /^[0-9a-f]{64}$/);
  assert.equal(exportKey(key, '5f0c6a4e-0000-4000-8000-000000000001'), a, 'both ends derive the same key');
  assert.notEqual(exportKey(key, '5f0c6a4e-0000-4000-8000-000000000002'), a, 'each export has its own');
  assert.notEqual(exportKey(Buffer.from('x'.repeat(64)), '5f0c6a4e-0000-4000-8000-000000000001'), a, 'another fleet, another key');

  const open = join(dir, 'open.key');
  writeFileSync(open, 'ab'.repeat(32), { mode: 0o644 });
  await assert.rejects(readFleetKey(open), (e: unknown) => refused('fleet-key-file')(e) && /chmod 600/.test((e as Error).message));
  const short = join(dir, 'short.key');
  writeFileSync(short, 'abc', { mode: 0o600 });
  await assert.rejects(readFleetKey(short), refused('fleet-key-file'));
  await assert.rejects(readFleetKey(join(dir, 'missing.key')), refused('fleet-key-file'));
}));

test('--max-copies is a whole number from 1 to 64 (default 2); --fleet-key-file an absolute path', () => {
  const base = { host: 'h1', listen: '10.0.0.2:8471', datastore: ['main=/srv/vmfork'] };
  assert.equal(parseHostAgentOptions(base).maxCopies, 2);
  assert.equal(parseHostAgentOptions({ ...base, maxCopies: '5' }).maxCopies, 5);
  for (const bad of ['0', '65', '1.5', 'x']) assert.throws(() => parseHostAgentOptions({ ...base, maxCopies: bad }), refused('max-copies'));
  assert.throws(() => parseHostAgentOptions({ ...base, fleetKeyFile: 'fleet.key' }), refused('fleet-key-file'));
  assert.equal(parseHostAgentOptions({ ...base, fleetKeyFile: '/etc/vmfork/fleet.key' }).fleetKeyFile, '/etc/vmfork/fleet.key');
});

test('copy slots: at most max at once, the others wait in order, a slot given back twice counts once', async () => {
  const slots = new Slots(2);
  const a = await slots.take();
  const b = await slots.take();
  const order: string[] = [];
  const c = slots.take().then((r) => (order.push('c'), r));
  const d = slots.take().then((r) => (order.push('d'), r));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, [], 'both wait while two hold a slot');
  a();
  a();
  const releaseC = await c;
  assert.deepEqual(order, ['c']);
  assert.equal(slots.busy, 2);
  b();
  const releaseD = await d;
  assert.deepEqual(order, ['c', 'd']);
  releaseC();
  releaseD();
  assert.equal(slots.busy, 0);
});
