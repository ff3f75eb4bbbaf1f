import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { WebSocket } from 'ws';
import { buildApp, ensureApiToken } from '../../src/api/index.js';
import { readStartTime, registerLocalHost } from '../../src/host/index.js';
import { parseVmSpec } from '../../src/spec/index.js';
import type { VmState } from '../../src/state/index.js';
import { insertVm, LOCAL_HOST_ID, openStore, recordProcess, registerAgentHost } from '../../src/store/index.js';
import { createLogger, waitUntil } from '../../src/util/index.js';
import { vmPaths, type VmDeps } from '../../src/vm/index.js';
import { registerVmStreams } from '../../src/web/index.js';
import { testActor } from '../helpers/actor.js';
import { testHomeLayout } from '../helpers/store.js';

// The console and screen WebSockets (src/web/) over a real Fastify listening on 127.0.0.1, with stand-ins for the
// VM's side: a console hub and a VNC server on unix sockets in the VM's directory. The VMs are records whose
// "QEMU" is this test process (its pid and start time, no monitor: an unresponsive QEMU still runs).

interface Fixture {
  deps: VmDeps;
  app: FastifyInstance;
  url: string;
  token: string;
  close(): Promise<void>;
}

async function fixture(): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'vmfork-streams-'));
  const home = await testHomeLayout(dir);
  const db = await openStore(home.db);
  const deps: VmDeps = { db, home, log: createLogger(undefined) };
  await registerLocalHost(deps);
  const { token } = await ensureApiToken(home);
  const app = buildApp({ deps, token });
  registerVmStreams(app, deps); // a no-op where buildApp has them already
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    deps, app, token,
    url: address.replace(/^http/, 'ws'),
    close: async () => {
      await app.close();
      await db.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A VM record in `state` (on `host`), its directory made; running ones get this process as their QEMU. */
async function addVm(f: Fixture, name: string, options: { state?: VmState; screen?: boolean; host?: string } = {}): Promise<ReturnType<typeof vmPaths>> {
  const paths = vmPaths(f.deps.home.vms, name);
  mkdirSync(paths.dir, { recursive: true });
  const spec = parseVmSpec({ name, accel: 'tcg', memoryMiB: 512, qmpSocket: paths.qmp, ...(options.screen ? { vga: { memMiB: 4 }, vncSocket: paths.screenSocket } : {}) });
  const now = new Date().toISOString();
  const state = options.state ?? 'running';
  await insertVm(f.deps.db, { name, host_id: options.host ?? LOCAL_HOST_ID, image_name: null, template_name: null, state, role: 'vm', dir: paths.dir, spec_json: JSON.stringify(spec), last_error: null, created_at: now, updated_at: now }, await testActor('boot'));
  if (state === 'running') {
    const startTime = await readStartTime(process.pid);
    assert.ok(startTime !== undefined);
    await recordProcess(f.deps.db, { vm_name: name, pid: process.pid, start_time: startTime, qmp_path: paths.qmp, agent_path: null, pidfile: paths.pidfile, argv_json: '[]', started_at: now, exited_at: null });
  }
  return paths;
}

/** A unix server standing in for the VM's side: what each connection sent, and the connections. */
function fakeSide(path: string, greeting: string): Promise<{ server: Server; conns: Socket[]; received: () => string }> {
  const conns: Socket[] = [];
  const got: Buffer[] = [];
  const server = createServer((s) => {
    conns.push(s);
    s.on('data', (d: Buffer) => got.push(d));
    s.on('error', () => undefined);
    if (greeting) s.write(greeting);
  });
  return new Promise((resolve) => server.listen(path, () => resolve({ server, conns, received: () => Buffer.concat(got).toString('latin1') })));
}

/** A WebSocket client with the bearer token: what it received, and how it closed. */
async function open(f: Fixture, path: string, headers: Record<string, string> = { authorization: `Bearer ${f.token}` }): Promise<{ ws: WebSocket; text: () => string; closed: () => number | undefined }> {
  const ws = new WebSocket(`${f.url}${path}`, { headers });
  const chunks: Buffer[] = [];
  let code: number | undefined;
  ws.on('message', (d: Buffer, isBinary: boolean) => {
    assert.equal(isBinary, true, 'binary frames');
    chunks.push(d);
  });
  ws.on('close', (c: number) => (code = c));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, text: () => Buffer.concat(chunks).toString('latin1'), closed: () => code };
}

/** The HTTP answer to an upgrade that is refused: its status and error code. */
function refusal(f: Fixture, path: string, headers: Record<string, string> = { authorization: `Bearer ${f.token}` }): Promise<{ status: number; code: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${f.url}${path}`, { headers });
    ws.on('open', () => reject(new Error(`${path} was upgraded`)));
    ws.on('error', () => undefined);
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => {
        req.destroy(); // ws leaves a refused request to the listener
        resolve({ status: res.statusCode ?? 0, code: (JSON.parse(body) as { error: { code: string } }).error.code });
      });
    });
  });
}

const until = (what: string, fn: () => boolean): Promise<unknown> => waitUntil(() => fn() || undefined, { deadlineMs: 10_000, everyMs: 10, what });

test('console: two viewers each get what the hub sends and type into it; the VM side closing closes them', async (t) => {
  const f = await fixture();
  t.after(() => f.close());
  const paths = await addVm(f, 'con1');
  const hub = await fakeSide(paths.consoleSocket, 'tail of the log\r\n');
  t.after(() => hub.server.close());
  const a = await open(f, '/v1/vms/con1/console');
  const b = await open(f, '/v1/vms/con1/console');
  for (const v of [a, b]) await until('the tail', () => v.text() === 'tail of the log\r\n');
  assert.equal(hub.conns.length, 2, 'one hub connection per viewer');
  a.ws.send(Buffer.from('hostname\n'));
  b.ws.send('x'); // a text frame is its UTF-8 bytes
  await until('both viewers\' keystrokes at the hub', () => hub.received().length === 'hostname\nx'.length);
  assert.ok(hub.received().includes('hostname\n') && hub.received().includes('x'));
  for (const c of hub.conns) c.write('con1\r\n');
  for (const v of [a, b]) await until('the live line', () => v.text().endsWith('con1\r\n'));
  for (const c of hub.conns) c.end(); // the VM stopped
  for (const v of [a, b]) await until('the viewer closed', () => v.closed() === 1000);
});

test('screen: view only drops the viewer\'s keys and pointer, ?control=1 passes them; the subprotocol is binary', async (t) => {
  const f = await fixture();
  t.after(() => f.close());
  const paths = await addVm(f, 'scr1', { screen: true });
  const vnc = await fakeSide(paths.screenSocket, 'RFB 003.008\n');
  t.after(() => vnc.server.close());
  const handshake = Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([1, 1])]);
  const key = Buffer.from([4, 1, 0, 0, 0, 0, 0, 0x61]);
  const pointer = Buffer.from([5, 1, 0, 10, 0, 20]);
  const update = Buffer.from([3, 0, 0, 0, 0, 0, 2, 208, 1, 144]);

  const viewer = await open(f, '/v1/vms/scr1/screen');
  await until('the server\'s version', () => viewer.text() === 'RFB 003.008\n');
  viewer.ws.send(handshake.subarray(0, 5));
  viewer.ws.send(Buffer.concat([handshake.subarray(5), key.subarray(0, 3)]));
  viewer.ws.send(Buffer.concat([key.subarray(3), pointer, update]));
  await until('the handshake and the update request at QEMU', () => vnc.received().length === handshake.length + update.length);
  assert.equal(vnc.received(), Buffer.concat([handshake, update]).toString('latin1'), 'no key, no pointer');
  viewer.ws.close();

  const ctl = new WebSocket(`${f.url}/v1/vms/scr1/screen?control=1`, ['binary'], { headers: { authorization: `Bearer ${f.token}` } });
  await new Promise((resolve, reject) => {
    ctl.once('open', resolve);
    ctl.once('error', reject);
  });
  assert.equal(ctl.protocol, 'binary');
  const before = vnc.received().length;
  ctl.send(Buffer.concat([handshake, key, pointer]));
  await until('everything at QEMU', () => vnc.received().length === before + handshake.length + key.length + pointer.length);
  ctl.close();

  // a viewer that is not speaking RFB is cut off
  const bad = await open(f, '/v1/vms/scr1/screen');
  bad.ws.send(Buffer.from('GET / HTTP/1.1\r\n'));
  await until('the bad viewer closed', () => bad.closed() === 1008);
});

test('refused before the upgrade, with the API\'s errors: no token, unknown VM, not running, no console, no screen, another host\'s VM', async (t) => {
  const f = await fixture();
  t.after(() => f.close());
  await addVm(f, 'up1');
  await addVm(f, 'off1', { state: 'stopped' });
  await registerAgentHost(f.deps.db, { id: 'h2', hostname: 'h2', protocol: 1, pid: 1, listen: '127.0.0.1:1', cpus: 2, cpuAllocationRatio: 16, memoryBytes: 1 << 30, accel: 'tcg', accelWhy: 'test', qemuVersion: '7.2', lostAfterMs: 60_000, datastores: [] });
  await addVm(f, 'far1', { state: 'stopped', host: 'h2' });
  assert.deepEqual(await refusal(f, '/v1/vms/up1/console', {}), { status: 401, code: 'VMFORK_AUTH_REQUIRED' });
  assert.deepEqual(await refusal(f, '/v1/vms/nope/console'), { status: 404, code: 'VMFORK_VM_NOT_FOUND' });
  assert.deepEqual(await refusal(f, '/v1/vms/nope/screen'), { status: 404, code: 'VMFORK_VM_NOT_FOUND' });
  assert.deepEqual(await refusal(f, '/v1/vms/off1/console'), { status: 409, code: 'VMFORK_VM_STATE' });
  assert.deepEqual(await refusal(f, '/v1/vms/up1/console'), { status: 409, code: 'VMFORK_VM_STATE' }, 'no console socket');
  assert.deepEqual(await refusal(f, '/v1/vms/up1/screen'), { status: 409, code: 'VMFORK_VM_STATE' }, 'no screen');
  assert.deepEqual(await refusal(f, '/v1/vms/far1/console'), { status: 409, code: 'VMFORK_VM_ELSEWHERE' });
});
