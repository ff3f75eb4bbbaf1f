import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { getVm } from '../../src/store/index.js';
import { waitUntil } from '../../src/util/index.js';
import { forkTracked, guestShell, useSharedRung, vmTest } from '../fixtures/ladder.js';

// The serial log's cap with a real guest (docs/launcher.md, "Bounds"): a child of the shared template writes far
// more than the cap to its console, fast, and what is left on disk is within the cap and ends with its newest line.

const CAP = 16 * 1024;
// read when a VM's logger starts: the child this file forks logs with a cap it passes many times over
process.env.VMFORK_SERIAL_LOG_BYTES = String(CAP);

const fx = useSharedRung();

const sizeOf = (path: string): Promise<number> => stat(path).then((s) => s.size, () => 0);

vmTest('a guest writing fast to ttyS0 leaves a serial log within the cap that ends with its newest line', () => fx.tracker, async (t) => {
  const started = Date.now();
  const batch = await forkTracked(fx.th, fx.tracker, { template: fx.template, count: 1, namePattern: 'serial-{n}' });
  assert.deepEqual(batch.failed, [], JSON.stringify(batch.failed));
  const name = batch.children[0]?.name ?? assert.fail('no child');
  const vm = await getVm(fx.th.db, name);
  assert.ok(vm);
  const log = join(vm.dir, 'serial.log');
  const forked = Date.now();
  const marker = `newest-line-${randomUUID()}`;
  // ~64 KB of lines (~75 KB on the wire: the tty turns LF into CRLF), over 4 times the cap, then the marker
  const r = await guestShell(fx.th.db, name, `seq 1 12000 > /dev/ttyS0 && echo ${marker} > /dev/ttyS0`, 180_000);
  assert.equal(r.code, 0, r.err);
  await waitUntil(async () => (await readFile(log, 'utf8').catch(() => '')).includes(marker) || undefined, {
    deadlineMs: 60_000,
    everyMs: 100,
    what: 'the marker in serial.log',
  });
  t.diagnostic(`fork ${forked - started} ms, flood written and logged ${Date.now() - forked} ms`);
  const total = (await sizeOf(log)) + (await sizeOf(`${log}.1`));
  assert.ok(total <= CAP, `serial.log + serial.log.1 = ${total} bytes, more than the cap of ${CAP}`);
  assert.ok((await sizeOf(`${log}.1`)) > 0, 'it rotated');
  const lines = (await readFile(log, 'utf8')).replace(/\r/g, '').trimEnd().split('\n');
  assert.equal(lines.at(-1), marker, 'serial.log ends with the newest line');
  assert.equal(lines.at(-2), '12000', 'and the line before it is the last of the flood');
});
