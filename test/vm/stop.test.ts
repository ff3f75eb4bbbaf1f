import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readStartTime, registerLocalHost } from '../../src/host/index.js';
import { insertVm, LOCAL_HOST_ID, openStore, recordProcess } from '../../src/store/index.js';
import { createLogger, waitUntil } from '../../src/util/index.js';
import { stopVm } from '../../src/vm/index.js';
import { testActor } from '../helpers/actor.js';
import { testHomeLayout } from '../helpers/store.js';

/**
 * A stand-in QEMU: a QMP server on `sock` that answers every command, counts `system_powerdown` into `count` and
 * exits at the second — a guest still booting, whose first power button went nowhere.
 */
const FAKE_QEMU = `
const net = require('node:net'); const fs = require('node:fs');
const [sock, count] = process.argv.slice(1);
let presses = 0;
net.createServer((c) => {
  c.write(JSON.stringify({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 }, package: '' }, capabilities: [] } }) + '\\r\\n');
  let buf = '';
  c.on('data', (d) => {
    buf += d;
    for (let i; (i = buf.indexOf('\\n')) >= 0; buf = buf.slice(i + 1)) {
      const cmd = JSON.parse(buf.slice(0, i));
      c.write(JSON.stringify({ return: {}, id: cmd.id }) + '\\r\\n');
      if (cmd.execute === 'system_powerdown') {
        presses++;
        fs.writeFileSync(count, String(presses));
        if (presses === 2) setTimeout(() => process.exit(0), 50);
      }
    }
  });
}).listen(sock);
`;

test('stop asks again while the guest runs: a power button pressed before the guest listened is not the end of it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vmfork-stop-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const home = await testHomeLayout(dir);
  const db = await openStore(home.db);
  t.after(() => db.destroy());
  const deps = { db, home, log: createLogger(undefined) };
  await registerLocalHost(deps);
  const qmp = join(dir, 'qmp.sock');
  const count = join(dir, 'presses');
  const qemu = spawn(process.execPath, ['-e', FAKE_QEMU, qmp, count], { stdio: 'ignore' });
  t.after(() => qemu.kill('SIGKILL'));
  const exited = new Promise((resolve) => qemu.once('exit', resolve));
  const now = new Date().toISOString();
  await insertVm(db, { name: 'booting', host_id: LOCAL_HOST_ID, image_name: null, state: 'running', role: 'vm', dir, spec_json: '{}', last_error: null, created_at: now, updated_at: now, template_name: null, pool_name: null }, await testActor('boot'));
  await waitUntil(async () => (await readStartTime(qemu.pid as number)) ?? undefined, { deadlineMs: 10_000, everyMs: 20, what: 'the fake QEMU' });
  await recordProcess(db, { vm_name: 'booting', pid: qemu.pid as number, start_time: (await readStartTime(qemu.pid as number)) as number, qmp_path: qmp, agent_path: null, pidfile: join(dir, 'pid'), argv_json: '[]', started_at: now, exited_at: null });
  await waitUntil(() => existsSync(qmp) || undefined, { deadlineMs: 10_000, everyMs: 20, what: 'its QMP socket' });

  const stopped = await stopVm(deps, 'booting', { timeoutMs: 30_000 });
  await exited;
  assert.equal(stopped.state, 'stopped');
  assert.equal(readFileSync(count, 'utf8'), '2', 'the power button pressed again, and the guest powered off by itself (not quit)');
});
