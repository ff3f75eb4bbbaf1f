import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isVmforkError } from '../../src/errors.js';
import { waitUntil } from '../../src/util/index.js';

test('waitUntil resolves with the first value the check gives', async () => {
  let n = 0;
  const v = await waitUntil(() => (++n >= 3 ? `after ${n}` : undefined), { deadlineMs: 5000, everyMs: 1 });
  assert.equal(v, 'after 3');
});

test('waitUntil throws VMFORK_TIMEOUT naming what it waited for, past its deadline', async () => {
  await assert.rejects(
    waitUntil(() => false, { deadlineMs: 30, everyMs: 5, what: 'the moon' }),
    (err: unknown) => isVmforkError(err) && err.code === 'VMFORK_TIMEOUT' && /the moon/.test(err.message),
  );
});

test('waitUntil stops on its signal and passes a check error through', async () => {
  const ac = new AbortController();
  const p = waitUntil(() => undefined, { deadlineMs: 60_000, everyMs: 10_000, signal: ac.signal });
  ac.abort(new Error('stop'));
  await assert.rejects(p, /stop/);
  await assert.rejects(
    waitUntil(() => {
      throw new Error('boom');
    }, { deadlineMs: 1000 }),
    /boom/,
  );
});
