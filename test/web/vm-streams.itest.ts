/**
 * The web console's streams with real VMs (TCG): a VM booted with a screen (`vm boot --screen`), its serial console
 * through the API's WebSocket — two viewers see the port, one types `hostname` into the root shell the image runs
 * there and both read the answer, and serial.log still grows beside them — and its screen — QEMU's VNC through the
 * view-only filter: the RFB handshake, a framebuffer update of the text screen (not one colour), a key that never
 * reaches the guest, and one that does with ?control=1 (counted by the guest's keyboard interrupts). Then the same of
 * a child forked from a template made with a screen: the VGA device travels in the template's state.
 */
import { after, before, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { WebSocket } from 'ws';
import { buildApp, ensureApiToken } from '../../src/api/index.js';
import { decodeVmSpec } from '../../src/spec/index.js';
import { getVm } from '../../src/store/index.js';
import { createTemplate } from '../../src/template/index.js';
import { waitUntil } from '../../src/util/index.js';
import { registerVmStreams } from '../../src/web/index.js';
import { createTestHome, ensureImage, forkTracked, guestShell, qemuProcessesMatching, teardownHome, vmTest, VmTracker, type TestHome } from '../fixtures/ladder.js';
import { useLeakCheck } from '../fixtures/leak-check.js';

let th: TestHome;
let tracker: VmTracker;
let app: FastifyInstance;
let url: string;
let token: string;

before(async () => {
  th = await createTestHome('vm-streams');
  tracker = new VmTracker(th);
  await ensureImage(th);
  token = (await ensureApiToken(th.home)).token;
  app = buildApp({ deps: th, token });
  registerVmStreams(app, th); // a no-op where buildApp has them already
  url = (await app.listen({ host: '127.0.0.1', port: 0 })).replace(/^http/, 'ws');
}, { timeout: 40 * 60_000 });

useLeakCheck(() => th, () => tracker.teardown());

after(async () => {
  await app?.close();
  await tracker.teardown();
  assert.deepEqual(await qemuProcessesMatching(th.root), [], 'no QEMU process left behind');
  assert.deepEqual(await teardownHome(th), [], 'the home left nothing behind');
});

/** A WebSocket viewer: its bytes as they come, read by `take`, or all of them so far. */
class Viewer {
  private buf = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  closed = false;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.waiter?.();
    });
    ws.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
  }

  static async open(path: string): Promise<Viewer> {
    const ws = new WebSocket(`${url}${path}`, ['binary'], { headers: { authorization: `Bearer ${token}` } });
    const v = new Viewer(ws);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    return v;
  }

  text(): string {
    return this.buf.toString('latin1');
  }

  /** The next `n` bytes (an RFB reader). */
  async take(n: number, what: string): Promise<Buffer> {
    const deadline = Date.now() + 60_000;
    while (this.buf.length < n) {
      if (this.closed) throw new Error(`the stream closed while waiting for ${what}`);
      if (Date.now() > deadline) throw new Error(`no ${what} within 60 s`);
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, 1_000);
      });
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  send(bytes: Buffer | string): void {
    this.ws.send(bytes);
  }

  close(): void {
    this.ws.close();
  }
}

/** RFB 3.8 up to the ServerInit, then raw encoding only: the screen's width, height and bytes per pixel. */
async function rfbHello(v: Viewer): Promise<{ width: number; height: number; bpp: number }> {
  assert.equal((await v.take(12, 'ProtocolVersion')).toString('latin1'), 'RFB 003.008\n');
  v.send('RFB 003.008\n');
  const types = await v.take(1, 'the security types');
  assert.deepEqual([...(await v.take(types[0] ?? 0, 'the security types'))], [1], 'no VNC password: security type None only');
  v.send(Buffer.from([1]));
  assert.equal((await v.take(4, 'SecurityResult')).readUInt32BE(0), 0);
  v.send(Buffer.from([1])); // ClientInit, shared
  const init = await v.take(24, 'ServerInit');
  await v.take(init.readUInt32BE(20), 'the desktop name');
  const encodings = Buffer.from([2, 0, 0, 1, 0, 0, 0, 0]); // SetEncodings: raw
  v.send(encodings);
  return { width: init.readUInt16BE(0), height: init.readUInt16BE(2), bpp: (init[4] ?? 0) / 8 };
}

/** One full FramebufferUpdate in raw encoding: the number of distinct pixel values in it. */
async function frameColours(v: Viewer, screen: { width: number; height: number; bpp: number }): Promise<number> {
  const request = Buffer.alloc(10);
  request.writeUInt8(3, 0);
  request.writeUInt16BE(screen.width, 6);
  request.writeUInt16BE(screen.height, 8);
  v.send(request); // not incremental: the whole screen
  const head = await v.take(4, 'FramebufferUpdate');
  assert.equal(head[0], 0, 'a FramebufferUpdate');
  const colours = new Set<string>();
  for (let r = head.readUInt16BE(2); r > 0; r--) {
    const rect = await v.take(12, 'a rectangle');
    assert.equal(rect.readInt32BE(8), 0, 'raw encoding');
    const pixels = await v.take(rect.readUInt16BE(4) * rect.readUInt16BE(6) * screen.bpp, 'its pixels');
    for (let i = 0; i < pixels.length; i += screen.bpp) colours.add(pixels.subarray(i, i + screen.bpp).toString('hex'));
  }
  return colours.size;
}

/** KeyEvent down and up for Shift: harmless wherever it lands. */
const SHIFT = Buffer.from([4, 1, 0, 0, 0, 0, 0xff, 0xe1, 4, 0, 0, 0, 0, 0, 0xff, 0xe1]);

/** The guest's keyboard interrupts (i8042, IRQ 1): what a key reaching the guest raises. */
async function keyIrqs(name: string): Promise<number> {
  const line = (await guestShell(th.db, name, 'grep i8042 /proc/interrupts | head -1')).out;
  return line.trim().split(/\s+/).slice(1, -3).reduce((sum, n) => sum + Number(n), 0);
}

/** A viewer typing `hostname` into the serial console, and what every viewer reads back. */
async function consoleAnswers(name: string, expected: string): Promise<void> {
  const log = join(th.home.vms, name, 'serial.log');
  // a booted VM's log holds its boot; a forked child's may be empty (its shell printed its prompt in the template)
  const logged = (await stat(log)).size;
  const a = await Viewer.open(`/v1/vms/${name}/console`);
  const b = await Viewer.open(`/v1/vms/${name}/console`);
  try {
    // both get the log's tail first, then the live port
    if (logged > 0) await waitUntil(() => (a.text().length > 0 && b.text().length > 0) || undefined, { deadlineMs: 30_000, everyMs: 100, what: 'the log tail at both viewers' });
    const logBefore = (await stat(log)).size;
    a.send('hostname\n');
    // the answer right after the echoed command (not a line of the log that named it before), terminal controls
    // (bash's bracketed paste) and carriage returns left out
    // eslint-disable-next-line no-control-regex
    const lines = (v: Viewer): string => v.text().replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
    await waitUntil(() => [a, b].every((v) => lines(v).includes(`hostname\n${expected}\n`)) || undefined, {
      deadlineMs: 60_000, everyMs: 100, what: `"${expected}" after the command at both viewers`,
    }).catch((err: unknown) => assert.fail(`${(err as Error).message}; a got ${JSON.stringify(a.text().slice(-300))}, b got ${JSON.stringify(b.text().slice(-300))}`));
    await waitUntil(async () => (await readFile(log, 'latin1')).includes(expected) || undefined, { deadlineMs: 30_000, everyMs: 100, what: 'the answer in serial.log' });
    assert.ok((await stat(log)).size > logBefore, 'serial.log grows beside the viewers');
  } finally {
    a.close();
    b.close();
  }
}

/** The screen: the RFB handshake, a whole frame that is not one colour, a key dropped in view only, passed in control. */
async function screenWorks(t: TestContext, name: string): Promise<void> {
  const viewer = await Viewer.open(`/v1/vms/${name}/screen`);
  assert.equal(viewer.ws.protocol, 'binary');
  const screen = await rfbHello(viewer);
  t.diagnostic(`${name}: screen ${screen.width}x${screen.height}, ${screen.bpp} bytes per pixel`);
  assert.ok(screen.width >= 320 && screen.height >= 200);
  const colours = await frameColours(viewer, screen);
  assert.ok(colours > 1, `the text screen is not one colour (${colours})`);
  const irqs = await keyIrqs(name);
  viewer.send(SHIFT);
  assert.ok((await frameColours(viewer, screen)) > 1, 'the stream goes on after the dropped key');
  assert.equal(await keyIrqs(name), irqs, 'the view-only key never reached the guest\'s keyboard');
  viewer.close();
  await waitUntil(async () => (await readFile(join(th.home.logs, 'vmfork.log'), 'utf8')).split('\n').some((l) => l.includes('screen viewer gone') && l.includes(`"vm":"${name}"`) && l.includes('"key":2')) || undefined, {
    deadlineMs: 10_000, everyMs: 100, what: 'the viewer\'s dropped key (down and up) in the log',
  });

  const control = await Viewer.open(`/v1/vms/${name}/screen?control=1`);
  await frameColours(control, await rfbHello(control));
  control.send(SHIFT);
  await waitUntil(async () => (await keyIrqs(name)) > irqs || undefined, { deadlineMs: 30_000, everyMs: 250, what: 'the key in control to reach the guest' });
  control.close();
}

vmTest('a VM booted with a screen: two console viewers, `hostname` typed in one answered in both, the log still kept; the screen over VNC, view only until ?control=1', () => tracker, async (t) => {
  const name = tracker.track('screen1');
  await th.cli(['vm', 'boot', '--image', 'default', '--name', name, '--screen', '--json']);
  const cmdline = await guestShell(th.db, name, 'cat /proc/cmdline');
  assert.match(cmdline.out, /console=tty0 console=ttyS0/, 'the kernel writes to the screen too, /dev/console stays the serial port');
  // the console's root shell runs on ttyS0 without a login session: a claim released on logoff never waits for it
  // the agent answers as soon as it starts, which can be before systemd reaches serial-getty on a loaded host: wait
  // for what runs on ttyS0 to settle, and then it must be a bare bash
  let onTty = '';
  await waitUntil(async () => {
    onTty = (await guestShell(th.db, name, 'ps -o comm= -t ttyS0')).out;
    return onTty === 'bash' || undefined;
  }, { deadlineMs: 90_000, everyMs: 250, what: 'bash on ttyS0' }).catch(() => assert.fail(`ttyS0 runs ${JSON.stringify(onTty)}, not bash`));
  assert.equal((await guestShell(th.db, name, 'loginctl list-sessions --no-legend | wc -l')).out, '0');
  const hostname = `scr-${randomBytes(4).toString('hex')}`;
  assert.equal((await guestShell(th.db, name, `hostname ${hostname}`)).code, 0);
  await consoleAnswers(name, hostname);
  await screenWorks(t, name);
});

vmTest('a template with a screen: its child is forked with the VGA device (its own VNC socket) and answers on both streams with its own name', () => tracker, async (t) => {
  const record = await createTemplate(th, { name: 'tpl-screen', image: 'default', screen: true });
  assert.match(record.layout, /"vga":4/, 'the device is in the layout a child must match');
  const batch = await forkTracked(th, tracker, { template: 'tpl-screen', count: 1, namePattern: 'scrkid-{n}' });
  assert.deepEqual(batch.failed, [], JSON.stringify(batch.failed));
  const name = batch.children[0]?.name ?? assert.fail('no child');
  const spec = decodeVmSpec((await getVm(th.db, name))?.spec_json ?? '{}');
  assert.deepEqual([spec.vga, spec.vncSocket], [{ memMiB: 4 }, join(th.home.vms, name, 'vnc.sock')]);
  await consoleAnswers(name, name);
  await screenWorks(t, name);
});
