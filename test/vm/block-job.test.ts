import assert from 'node:assert/strict';
import { test } from 'node:test';
import { QmpClient } from '../../src/qemu/index.js';
import { runBlockJob } from '../../src/vm/block-job.js';
import { peerPerTest } from '../qemu/scripted-peer.js';

// The block-job driver of `vm promote` (src/vm/block-job.ts) against a scripted QMP peer: the order of its commands
// (a mirror pivots only once READY), its progress, and how it ends (an error event, a cancel).
const fixture = peerPerTest();
const job = (over: Record<string, unknown> = {}) => ({ device: 'promote-disk0', type: 'mirror', len: 1000, offset: 0, ready: false, status: 'running', ...over });

async function connected(): Promise<{ qmp: QmpClient; conn: Awaited<ReturnType<ReturnType<typeof fixture.peer>['nextConnection']>> }> {
  const connecting = QmpClient.connect(fixture.peer().path);
  const conn = await fixture.peer().nextConnection();
  await conn.negotiate();
  return { qmp: await connecting, conn };
}

test('a mirror: started once, progress from query-block-jobs, block-job-complete at READY, done at BLOCK_JOB_COMPLETED', async () => {
  const { qmp, conn } = await connected();
  const seen: number[] = [];
  const running = runBlockJob(qmp, {
    id: 'promote-disk0',
    pivot: true,
    deadlineMs: 30_000,
    start: () => qmp.execute('drive-mirror', { 'job-id': 'promote-disk0', device: 'disk0' }).then(() => undefined),
    progress: async (offset, len) => {
      seen.push(offset / len);
    },
  });
  try {
    await conn.play([
      { expect: 'query-block-jobs', reply: [] },
      { expect: 'drive-mirror' },
      { expect: 'query-block-jobs', reply: [job({ offset: 500 })] },
      { expect: 'query-block-jobs', reply: [job({ offset: 1000, ready: true, status: 'ready' })] },
      { expect: 'block-job-complete' },
      { event: 'BLOCK_JOB_COMPLETED', data: { device: 'promote-disk0', len: 1000, offset: 1000, speed: 0, type: 'mirror' } },
    ]);
    assert.deepEqual(await running, { how: 'completed', len: 1000 });
    assert.deepEqual(seen, [0.5, 1]);
    const complete = conn.received.find((r) => r.execute === 'block-job-complete');
    assert.deepEqual(complete?.arguments, { device: 'promote-disk0' });
  } finally {
    qmp.close();
  }
});

test('a job already in QEMU (a resumed task) is awaited, not started again; one gone without an event is `gone`', async () => {
  const { qmp, conn } = await connected();
  const running = runBlockJob(qmp, { id: 'promote-disk0', pivot: false, deadlineMs: 30_000, start: () => Promise.reject(new Error('started twice')) });
  try {
    await conn.play([
      { expect: 'query-block-jobs', reply: [job({ type: 'stream' })] },
      { expect: 'query-block-jobs', reply: [job({ type: 'stream', offset: 900 })] },
      { expect: 'query-block-jobs', reply: [] },
    ]);
    assert.deepEqual(await running, { how: 'gone', len: 1000 });
    assert.ok(!conn.received.some((r) => r.execute === 'block-stream' || r.execute === 'drive-mirror'));
  } finally {
    qmp.close();
  }
});

test('a job that ends with an error is VMFORK_QMP_ERROR with QEMU\'s reason', async () => {
  const { qmp, conn } = await connected();
  const running = runBlockJob(qmp, { id: 'promote-disk0', pivot: false, deadlineMs: 30_000, start: () => qmp.execute('block-stream', { 'job-id': 'promote-disk0' }).then(() => undefined) });
  try {
    await conn.play([
      { expect: 'query-block-jobs', reply: [] },
      { expect: 'block-stream' },
      { event: 'BLOCK_JOB_COMPLETED', data: { device: 'promote-disk0', len: 1000, offset: 10, speed: 0, type: 'stream', error: 'No space left on device' } },
      // the failed job is gone when the driver looks for one to cancel
      { expect: 'query-block-jobs', reply: [] },
    ]);
    await assert.rejects(running, { code: 'VMFORK_QMP_ERROR', message: /No space left on device/ });
  } finally {
    qmp.close();
  }
});

test('aborted (a cancelled task), the job is cancelled and awaited until QEMU drops it', async () => {
  const { qmp, conn } = await connected();
  const abort = new AbortController();
  const running = runBlockJob(qmp, { id: 'promote-disk0', pivot: true, deadlineMs: 30_000, signal: abort.signal, start: () => qmp.execute('drive-mirror', {}).then(() => undefined) });
  try {
    await conn.play([
      { expect: 'query-block-jobs', reply: [] },
      { expect: 'drive-mirror' },
      { expect: 'query-block-jobs', reply: [job({ offset: 100 })] },
    ]);
    abort.abort(new Error('cancelled by the user'));
    await conn.play([
      { expect: 'query-block-jobs', reply: [job({ offset: 200 })] },
      { expect: 'block-job-cancel' },
      { expect: 'query-block-jobs', reply: [] },
    ]);
    await assert.rejects(running, /cancelled by the user/);
    assert.deepEqual(conn.received.find((r) => r.execute === 'block-job-cancel')?.arguments, { device: 'promote-disk0', force: true });
    assert.ok(!conn.received.some((r) => r.execute === 'block-job-complete'), 'no pivot');
  } finally {
    qmp.close();
  }
});
