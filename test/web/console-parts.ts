/**
 * The parts of the console walk (console-walk.itest.ts) that are not its steps: `vmfork serve` started and stopped
 * as a user does, a WebSocket upgrade's answer, and the functions the walk runs in the page or reads it with.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Locator, Page } from 'playwright-core';
import WebSocket from 'ws';
import { CLI } from '../fixtures/ladder.js';

export interface Served {
  proc: ChildProcess;
  /** Where the API listens, `http://127.0.0.1:PORT`. */
  url: string;
  /** What `vmfork serve` printed as the console's address. */
  consoleUrl: string;
  token: string;
  output: string[];
}

/** `vmfork serve` as a user runs it, on a free port; resolves once it has printed its address and the console's. */
export async function startServe(root: string): Promise<Served> {
  const proc = spawn(process.execPath, [CLI, 'serve', '--listen', '127.0.0.1:0'], { env: { ...process.env, VMFORK_HOME: root }, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const found = await new Promise<{ url: string; consoleUrl: string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGTERM');
      reject(new Error(`vmfork serve did not start: ${output.join('')}`));
    }, 120_000);
    proc.stdout.on('data', (d: Buffer) => {
      output.push(d.toString());
      const m = /serving (http:\/\/\S+)\n[\s\S]*?console: (http:\/\/\S+) {2}\(log in with the token in (\S+)\)\n/.exec(output.join(''));
      if (m?.[1] && m[2]) {
        clearTimeout(timer);
        if (m[3] === join(root, 'api-token')) resolve({ url: m[1], consoleUrl: m[2] });
        else reject(new Error(`the console line names ${m[3]}, not the token file ${join(root, 'api-token')}`));
      }
    });
    proc.stderr.on('data', (d: Buffer) => output.push(d.toString()));
    proc.once('exit', (code) => reject(new Error(`vmfork serve exited ${code}: ${output.join('')}`)));
  });
  const token = readFileSync(join(root, 'api-token'), 'utf8').trim();
  assert.ok(!output.join('').includes(token), 'the server never prints its token');
  return { proc, ...found, token, output };
}

/** Stops the server by its pid (SIGTERM: QEMUs stay up, as a user's Ctrl-C) and waits for its exit. */
export async function stopServe(s: Served): Promise<void> {
  if (s.proc.exitCode !== null || s.proc.signalCode !== null || s.proc.pid === undefined) return;
  const exited = new Promise((r) => s.proc.once('exit', r));
  process.kill(s.proc.pid, 'SIGTERM');
  await exited;
}

/**
 * The status a WebSocket upgrade gets: 101 when it opens (then closed at once), else the refusal's status. Sent
 * from Node, so the test chooses the Cookie and Origin headers a browser would send.
 */
export function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    socket.once('open', () => {
      socket.close();
      resolve(101);
    });
    socket.once('unexpected-response', (request, response) => {
      resolve(response.statusCode ?? 0);
      response.resume();
      request.destroy();
    });
    socket.on('error', (err) => reject(err));
  });
}

/** The little of the browser's globals the page functions below use (the tests compile without the DOM library). */
export interface PageGlobals {
  document: { querySelector(selector: string): { getAttribute(name: string): string | null } | null };
  MutationObserver: new (callback: () => void) => { observe(target: unknown, options: Record<string, unknown>): void };
  vmforkProgress(value: string): Promise<void>;
  vmforkWalkMark?: string;
}

interface CanvasLike {
  width: number;
  height: number;
  getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> } } | null;
}

/** In the page: reports each new value of the task's progress bar to `vmforkProgress`, as the DOM changes. */
export function watchProgress(): void {
  const page = globalThis as unknown as PageGlobals;
  let last: string | null = null;
  const look = (): void => {
    const value = page.document.querySelector('[role="progressbar"][aria-label="Task progress"]')?.getAttribute('aria-valuenow') ?? null;
    if (value === null || value === last) return;
    last = value;
    void page.vmforkProgress(value);
  };
  new page.MutationObserver(look).observe(page.document, { subtree: true, childList: true, attributes: true, attributeFilter: ['aria-valuenow'] });
  look();
}

/**
 * In the page: how many distinct colours the canvas shows (counted up to 16), or false while it shows one (blank):
 * truthy once the screen shows a picture, for `waitForFunction`.
 */
export function screenColours(canvas: unknown): number | false {
  const c = canvas as CanvasLike;
  // noVNC sizes its canvas to the guest's screen once connected: 0×0 before
  if (c.width === 0 || c.height === 0) return false;
  const pixels = c.getContext('2d')?.getImageData(0, 0, c.width, c.height).data ?? [];
  const colours = new Set<number>();
  for (let i = 0; i + 3 < pixels.length && colours.size < 16; i += 4) {
    colours.add((((pixels[i] ?? 0) * 256 + (pixels[i + 1] ?? 0)) * 256 + (pixels[i + 2] ?? 0)) * 256 + (pixels[i + 3] ?? 0));
  }
  return colours.size > 1 ? colours.size : false;
}

/** Whether the values rose at least once. */
export function rose(values: number[]): boolean {
  return values.some((v, i) => i > 0 && v > (values[i - 1] as number));
}

/** The child's row in the pool page's "Children" table. */
export function childRow(page: Page, vm: string): Locator {
  const name = page.locator('td, th').filter({ hasText: new RegExp(`^\\s*${vm}\\s*$`) });
  return page.getByRole('table', { name: 'Children' }).getByRole('row').filter({ has: name });
}

/** A cell of the child's row, by its column's header. */
export async function childCell(page: Page, vm: string, column: string): Promise<Locator> {
  const table = page.getByRole('table', { name: 'Children' });
  // allInnerTexts does not wait: a page just opened may not have its table yet
  await table.getByRole('columnheader', { name: column, exact: true }).waitFor({ timeout: 60_000 }).catch(() => undefined);
  const headers = (await table.getByRole('columnheader').allInnerTexts()).map((h) => h.trim());
  const index = headers.indexOf(column);
  assert.ok(index >= 0, `the Children table has a column "${column}": ${headers.join(', ')}`);
  return childRow(page, vm).locator('td, th').nth(index);
}
